/**
 * Making and applying the directory backend's delta bodies (format in tree-delta.ts): walking the
 * two snapshot trees, running GNU tar on the changed entries, and applying a body to a tree.
 */
import { once } from 'node:events';
import { lstat, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../../../errors';
import type { Runner, StreamingCommand } from '../../../exec/runner';
import type { Logger } from '../../../log';
import * as cmd from './commands';
import {
  MANIFEST_FORMAT,
  RACY_WINDOW_NS,
  diffTrees,
  encodeManifest,
  isSafeRelativePath,
  parentsFirst,
  readManifest,
  sameContent,
  tarFileList,
  walkTree,
} from './tree-delta';

function corrupt(why: string): FerryError {
  return new FerryError('STREAM_CORRUPT', `directory stream is damaged: ${why}; the transfer must be retried`);
}

/**
 * The delta body that turns snapshot tree `baseRoot` (none: an empty tree) into `root`: the
 * manifest, then tar's archive of the changed entries. The base's mtime is its stamp, when its
 * copy began (see files.stampNewest): files modified close to it get their content compared.
 * Throws on read errors and tar failures; stops tar when the consumer goes away.
 */
export async function* sendTreeDelta(
  runner: Runner,
  log: Logger,
  root: string,
  baseRoot: string | undefined,
  names: { snapshot: string; base?: string },
): AsyncGenerator<Buffer> {
  const [next, old] = await Promise.all([walkTree(root), baseRoot ? walkTree(baseRoot) : undefined]);
  const baseStamp = baseRoot ? (await stat(baseRoot, { bigint: true })).mtimeNs : undefined;
  const delta = diffTrees(next, old, baseStamp === undefined ? undefined : baseStamp - RACY_WINDOW_NS);
  const changed = delta.changed;
  for (const p of delta.suspects) if (!(await sameContent(join(baseRoot!, p), join(root, p)))) changed.push(p);
  parentsFirst(changed);
  log.debug({ ...names, changed: changed.length, deleted: delta.deleted.length, suspects: delta.suspects.length }, 'tree delta');
  yield encodeManifest({ format: MANIFEST_FORMAT, ...names, deleted: delta.deleted, entries: changed.length });
  if (changed.length === 0) return;
  const tar = runner.stream(cmd.tarCreate(root));
  let finished = false;
  try {
    tar.stdin.end(tarFileList(changed));
    for await (const chunk of tar.stdout) yield chunk as Buffer;
    await tar.done;
    finished = true;
  } finally {
    // The consumer went away (or tar failed): stop tar rather than leave it blocked on a full pipe.
    if (!finished) tar.kill();
  }
}

/**
 * Applies a delta body to `tree` (a copy of the base, or an empty directory): removes the deleted
 * paths, then extracts the archive. Returns only after `body` has ended cleanly (the envelope's
 * checksum verified). Throws STREAM_CORRUPT when the body is damaged or does not match `expect`,
 * and tar's failure (CommandFailedError) when extraction fails.
 */
export async function applyTreeDelta(runner: Runner, tree: string, body: AsyncIterable<Buffer>, expect: { snapshot: string; base?: string }): Promise<void> {
  const { manifest, rest } = await readManifest(body);
  if (manifest.snapshot !== expect.snapshot || manifest.base !== expect.base) throw corrupt('manifest and header disagree');
  // Deepest first, so that nothing is removed from under a path removed later.
  for (const p of parentsFirst([...manifest.deleted]).reverse()) await removeInside(tree, p);
  if (manifest.entries === 0) {
    for await (const chunk of rest) if (chunk.length) throw corrupt('data after an empty delta');
    return;
  }
  const tar = runner.stream(cmd.tarExtract(tree));
  try {
    await pump(rest, tar);
  } catch (err) {
    tar.kill();
    throw err;
  }
}

/**
 * Removes `rel` inside `root`, refusing to pass through a symlink or non-directory on the way (the
 * path came from a stream; it must not reach outside the tree). A missing path is fine.
 */
async function removeInside(root: string, rel: string): Promise<void> {
  if (!isSafeRelativePath(rel)) throw corrupt(`unsafe path ${JSON.stringify(rel)}`);
  let dir = root;
  for (const part of rel.split('/').slice(0, -1)) {
    dir = join(dir, part);
    const st = await lstat(dir).catch(() => undefined);
    if (!st) return;
    if (!st.isDirectory()) throw corrupt(`${JSON.stringify(rel)} passes through a non-directory`);
  }
  await rm(join(root, rel), { recursive: true, force: true });
}

/**
 * Feeds `source` to the command's stdin with backpressure, then closes it and waits for the command.
 * If the command exits first (tar stops at its end-of-archive blocks), the rest of `source` is still
 * read to its end, where the envelope's checksum is verified. Throws the command's failure.
 */
async function pump(source: AsyncIterable<Buffer>, proc: StreamingCommand): Promise<void> {
  let exited = false;
  const exit = proc.done.then(
    () => {
      exited = true;
    },
    () => {
      exited = true;
    },
  );
  for await (const chunk of source) {
    if (exited) {
      await proc.done; // throws when the command failed
      continue;
    }
    if (!proc.stdin.write(chunk)) {
      const ac = new AbortController();
      await Promise.race([once(proc.stdin, 'drain', { signal: ac.signal }).catch(() => undefined), exit]);
      ac.abort();
    }
  }
  proc.stdin.end();
  await proc.done;
}
