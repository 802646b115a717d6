/**
 * node:http without its ES module facade. `import … from 'node:http'` makes Node build that
 * facade, which evaluates the module's lazy getters (`WebSocket` and friends) and so loads
 * Node's bundled undici: about 8 MB of RSS and 15 ms at start-up for nothing an operator uses.
 */
export const http = process.getBuiltinModule('node:http');
