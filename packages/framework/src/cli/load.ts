/**
 * Loading operator files: TypeScript through tsx's loader (no build, no type-check unless
 * asked), in ESM packages and in folders without a package.json. `import ... from 'kopf-ts'`
 * always resolves to this very copy of the package (its sources or its built files, whichever
 * runs), even where the file's folder has a `kopf-ts` of its own or none: all handlers land in
 * the registry that this CLI runs.
 */
import { registerHooks } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';
import type * as TypeScript from 'typescript';

const here = fileURLToPath(import.meta.url);
const ownEntry = pathToFileURL(
  resolve(dirname(here), '..', here.endsWith('.ts') ? 'index.ts' : 'index.js'),
).href;

// Once per process: the `kopf-ts` launcher may have registered tsx already (a second
// registration would load modules twice).
const REGISTERED = Symbol.for('kopf-ts.tsx-registered');
let hooked = false;
function registerLoaders(): void {
  const flags = globalThis as { [REGISTERED]?: boolean };
  if (!flags[REGISTERED]) {
    flags[REGISTERED] = true;
    register();
  }
  if (hooked) return;
  hooked = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === 'kopf-ts') return { url: ownEntry, format: 'module', shortCircuit: true };
      return nextResolve(specifier, context);
    },
  });
}

/** A load failure with a message fit for a terminal (file and line, no stack dump). */
export class LoadError extends Error {
  override readonly name = 'LoadError';
}

/** Imports each operator file once, in order. */
export async function loadOperatorFiles(files: string[]): Promise<void> {
  registerLoaders();
  for (const file of files) {
    const path = resolve(file);
    try {
      await import(pathToFileURL(path).href);
    } catch (error) {
      throw new LoadError(describeLoadError(path, error), { cause: error });
    }
  }
}

function describeLoadError(path: string, error: unknown): string {
  const e = error as {
    message?: string;
    code?: string;
    errors?: Array<{
      text: string;
      location?: { file: string; line: number; column: number; lineText?: string };
    }>;
  };
  // esbuild (through tsx) reports syntax errors with locations.
  if (Array.isArray(e.errors) && e.errors.length) {
    return e.errors
      .map((x) =>
        x.location
          ? `${x.location.file}:${x.location.line}:${x.location.column + 1}: ${x.text}${x.location.lineText ? `\n    ${x.location.lineText}` : ''}`
          : x.text,
      )
      .join('\n');
  }
  if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message?.startsWith(`Cannot find module '${path}'`))
    return `Cannot find the operator file ${path}.`;
  const message = e.message ?? String(error);
  // tsx's messages already name file:line:column for transform errors.
  if (error instanceof SyntaxError || /Transform failed/.test(message))
    return `${path}: ${message.split('\n').slice(0, 6).join('\n')}`;
  return `Loading ${path} failed: ${message}`;
}

/** Type-checks operator files with the TypeScript compiler found next to them (`--typecheck`). */
export async function typecheck(files: string[]): Promise<string[]> {
  const { createRequire } = await import('node:module');
  const require = createRequire(pathToFileURL(resolve(files[0] ?? '.')).href);
  let ts: typeof TypeScript;
  try {
    ts = require('typescript') as typeof TypeScript;
  } catch {
    throw new LoadError(
      "--typecheck needs the 'typescript' package installed next to the operator (npm install -D typescript).",
    );
  }
  const configPath = ts.findConfigFile(dirname(resolve(files[0] ?? '.')), (f) => ts.sys.fileExists(f));
  let options: TypeScript.CompilerOptions = {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2024,
    lib: ['lib.es2024.d.ts'],
    skipLibCheck: true,
    allowImportingTsExtensions: true,
  };
  if (configPath) {
    const config = ts.getParsedCommandLineOfConfigFile(
      configPath,
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    );
    if (config) options = config.options;
  }
  const program = ts.createProgram(
    files.map((f) => resolve(f)),
    { ...options, noEmit: true },
  );
  return ts.getPreEmitDiagnostics(program).map((d) =>
    ts
      .formatDiagnostic(d, {
        getCanonicalFileName: (f) => f,
        getCurrentDirectory: () => process.cwd(),
        getNewLine: () => '\n',
      })
      .trim(),
  );
}
