/** The psql operator: a `psql` resource becomes a PostgreSQL StatefulSet (issue 8). */
export {};
