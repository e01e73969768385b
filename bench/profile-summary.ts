// Where a profiled server spent its CPU: `npm run bench -- --only=aws --profile=DIR` leaves
// the server's .cpuprofile in DIR next to the unminified build it ran; this reads them and
// prints self time by package (or project file), the hottest functions, and the total time
// under a few functions of interest (inclusive). `tsx bench/profile-summary.ts DIR`.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** esbuild's unminified output marks each module with a `// path` comment line: line -> module. */
async function moduleMap(file: string): Promise<(line: number) => string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return () => '(unknown)';
  }
  const marks: { line: number; module: string }[] = [];
  text.split('\n').forEach((line, i) => {
    const m = /^\/\/ ((?:node_modules\/|lambda\/|infra\/|cli\/).+)$/.exec(line);
    if (m) marks.push({ line: i, module: m[1]! });
  });
  return (line) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = '(chunk glue)';
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]!.line <= line) {
        found = marks[mid]!.module;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

function packageOf(module: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(module)?.[1];
  return pkg ?? module;
}

export async function summarizeProfiles(dir: string, top = 25): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const out: string[] = [];
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // Time per sample, by node (timeDeltas[i] is the time before sample i).
    const selfUs = new Map<number, number>();
    profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0)));
    const totalUs = profile.endTime - profile.startTime;

    const maps = new Map<string, (line: number) => string>();
    const moduleOf = async (frame: CallFrame): Promise<string> => {
      if (frame.url === '') return `(${frame.functionName || 'native'})`;
      if (frame.url.startsWith('node:')) return 'node: (Node.js itself)';
      if (!frame.url.startsWith('file:')) return frame.url;
      if (!maps.has(frame.url)) maps.set(frame.url, await moduleMap(fileURLToPath(frame.url)));
      return maps.get(frame.url)!(frame.lineNumber);
    };

    const byPackage = new Map<string, number>();
    const byFunction = new Map<string, number>();
    let idle = 0;
    for (const [id, us] of selfUs) {
      const node = byId.get(id)!;
      const name = node.callFrame.functionName;
      if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') {
        if (name === '(idle)') idle += us;
        else byPackage.set(name, (byPackage.get(name) ?? 0) + us);
        continue;
      }
      const module = await moduleOf(node.callFrame);
      const pkg = packageOf(module);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
      const fn = `${name || '(anonymous)'} ${module}:${node.callFrame.lineNumber + 1}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    }
    const busy = [...selfUs.values()].reduce((a, b) => a + b, 0) - idle;

    // Inclusive time under each package (and function): a sample counts once for every package (function) on its stack.
    const inclusive = new Map<string, number>();
    const inclusiveFn = new Map<string, number>();
    for (const [id, us] of selfUs) {
      if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
      const seen = new Set<string>();
      const seenFn = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const node = byId.get(at)!;
        const module = await moduleOf(node.callFrame);
        if (node.callFrame.url.startsWith('file:')) seen.add(packageOf(module));
        if (node.callFrame.url !== '') seenFn.add(`${node.callFrame.functionName || '(anonymous)'} ${module}:${node.callFrame.lineNumber + 1}`);
      }
      for (const pkg of seen) inclusive.set(pkg, (inclusive.get(pkg) ?? 0) + us);
      for (const fn of seenFn) inclusiveFn.set(fn, (inclusiveFn.get(fn) ?? 0) + us);
    }

    const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(6)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%`;
    out.push(`${file}: ${(totalUs / 1e6).toFixed(1)} s profiled, ${(busy / 1000).toFixed(0)} ms on the CPU (${(idle / 1000).toFixed(0)} ms idle)`);
    out.push('  self time by package or project file:');
    for (const [name, us] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`    ${ms(us)}  ${name}`);
    out.push('  inclusive time by package (a stack counts once per package on it):');
    for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`    ${ms(us)}  ${name}`);
    out.push('  functions by inclusive time:');
    for (const [name, us] of [...inclusiveFn].sort((a, b) => b[1] - a[1]).slice(0, top * 2)) out.push(`    ${ms(us)}  ${name}`);
    out.push('  hottest functions (self):');
    for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) out.push(`    ${ms(us)}  ${name}`);
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: tsx bench/profile-summary.ts DIR (from npm run bench -- --only=aws --profile=DIR)');
    process.exit(2);
  }
  console.log(await summarizeProfiles(dir, Number(process.argv[3] ?? 25)));
}
