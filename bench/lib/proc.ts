/**
 * Process-tree figures from /proc: the descendants of a pid, their summed RSS, and CPU seconds
 * (user + system of the live processes, plus what reaped children left in the root's counters).
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

interface Stat {
  pid: number;
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

function stat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      ppid: Number(fields[1]),
      utime: Number(fields[11]),
      stime: Number(fields[12]),
      cutime: Number(fields[13]),
      cstime: Number(fields[14]),
    };
  } catch {
    return undefined;
  }
}

/** The pid and all its live descendants. */
export function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(Number(entry));
    if (s) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    if (!stat(pid)) return;
    out.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  walk(root);
  return out;
}

function rssKb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** RSS of the whole tree in bytes, and of each process (by command name). */
export function treeRss(root: number): {
  bytes: number;
  processes: Array<{ command: string; bytes: number }>;
} {
  const processes = tree(root).map((pid) => {
    let command = '?';
    try {
      command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // gone meanwhile
    }
    return { command, bytes: rssKb(pid) * 1024 };
  });
  return { bytes: processes.reduce((sum, p) => sum + p.bytes, 0), processes };
}

/** CPU seconds of the tree so far. */
export function treeCpu(root: number): number {
  let ticks = 0;
  for (const pid of tree(root)) {
    const s = stat(pid);
    if (s) ticks += s.utime + s.stime + s.cutime + s.cstime;
  }
  return ticks / TICKS;
}

/** CPU seconds of one process (e.g. the apiserver). */
export function processCpu(pid: number): number {
  const s = stat(pid);
  return s ? (s.utime + s.stime) / TICKS : 0;
}

/** CPU seconds the whole machine has been busy (all cores; /proc/stat, not idle nor iowait). */
export function machineBusy(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return (total - (fields[3] ?? 0) - (fields[4] ?? 0)) / TICKS;
}
