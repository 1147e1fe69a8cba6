import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FerryError } from '../errors';
import { parsePercent, validateBankName } from '../volume/backup-refs';
import { formatSize } from '../volume/size';
import type { BankRecord } from '../wire/records';
import { apiCall, apiStream } from './client';
import { table } from './format';
import { Progress, type ProgressSample } from './progress';

/** The flags of `ferry bank add`. */
export interface BankAddFlags {
  keyFile: string;
  endpoint?: string;
  region?: string;
  accessKeyFile?: string;
  secretKeyFile?: string;
  readOnly?: boolean;
  create?: boolean;
}

/** What `ferry bank key new` writes: 32 random bytes. */
export const NEW_KEY_BYTES = 32;

/**
 * The body of `POST /v1/banks` (pure but for `read`): the files' contents, never their paths (secrets
 * travel to the agent, which hands them to control; nothing of them is on a command line or in a log).
 */
export function bankAddBody(name: string, url: string, f: BankAddFlags, read: (path: string) => Buffer): Record<string, unknown> {
  if ((f.accessKeyFile === undefined) !== (f.secretKeyFile === undefined)) {
    throw new FerryError('INVALID_REQUEST', 'give --access-key-file and --secret-key-file together, or neither');
  }
  if (f.readOnly && f.create) throw new FerryError('INVALID_REQUEST', '--create makes a new bank, --read-only never writes one: give one of them');
  const file = (path: string, what: string): Buffer => {
    try {
      return read(path);
    } catch (err) {
      throw new FerryError('INVALID_REQUEST', `cannot read the ${what} file ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const text = (path: string, what: string): string => {
    const t = file(path, what).toString('utf8').trim();
    if (!t) throw new FerryError('INVALID_REQUEST', `the ${what} file ${path} is empty`);
    return t;
  };
  return {
    name: validateBankName(name),
    url,
    key: file(f.keyFile, 'key').toString('base64'),
    ...(f.endpoint ? { endpoint: f.endpoint } : {}),
    ...(f.region ? { region: f.region } : {}),
    ...(f.accessKeyFile ? { accessKey: text(f.accessKeyFile, 'access key'), secretKey: text(f.secretKeyFile!, 'secret key') } : {}),
    ...(f.readOnly ? { readOnly: true } : {}),
    ...(f.create ? { create: true } : {}),
  };
}

/** `ferry bank ls`'s table. */
export function bankTable(banks: BankRecord[]): string {
  return table(
    ['NAME', 'URL', 'MODE', 'BANK ID', 'ADDED'],
    banks.map((b) => [b.name, b.url + (b.endpoint ? ` (${b.endpoint})` : ''), b.readOnly ? 'read-only' : 'read-write', b.bankId, b.createdAt.replace(/\.\d{3}Z$/, 'Z')]),
  );
}

/** A bank operation's progress as it streams (src/bank/types.ts's BankProgress, as JSON). */
export interface StreamedProgress {
  phase: string;
  doneBytes: number;
  totalBytes: number;
}

/** A bank operation's progress as the bar takes it. */
export function sampleOf(p: StreamedProgress): ProgressSample {
  return { done: p.doneBytes, total: p.totalBytes > 0 ? p.totalBytes : null, step: p.phase };
}

/** Feeds a bar from streamed progress samples (a bar on a terminal, plain lines otherwise; none with --json). */
export function progressFeed(title: string, quiet: boolean): { feed: (p: unknown) => void; stop: () => void } {
  if (quiet) return { feed: () => undefined, stop: () => undefined };
  const bar = new Progress(title);
  return { feed: (p) => bar.update(sampleOf(p as StreamedProgress)), stop: () => bar.stop() };
}

/** What `ferry bank check` answers. */
export interface CheckAnswer {
  checkpoints: number;
  chunks: number;
  read: number;
  problems: Array<{ chunk: string; problem: 'missing' | 'corrupt'; checkpoints: string[] }>;
}

/** `ferry bank check`'s words: a summary line, then one line per problem naming the checkpoints it breaks. */
export function checkText(bank: string, r: CheckAnswer): string {
  const head = `bank ${bank}: ${r.checkpoints} checkpoints, ${r.chunks} chunks referenced, ${r.read} read and verified: ${r.problems.length ? `${r.problems.length} problems` : 'no problems'}`;
  return [head, ...r.problems.map((p) => `  chunk ${p.chunk} is ${p.problem}; it breaks ${p.checkpoints.join(', ')}`)].join('\n');
}

/** Exit status of `ferry bank check` with problems found. */
export const CHECK_FAILED_EXIT = 1;

/**
 * bank-ops (issue 8): `ferry bank add|key new|ls|inspect|rm|gc|check`. Keys and credentials are files:
 * the CLI reads them and sends their contents over the local API socket (root only).
 */
export function bankCommands(program: Command, api: () => string): void {
  const path = (name: string): string => `/v1/banks/${encodeURIComponent(name)}`;
  const bank = program.command('bank').description('banks that backups go to: file:///path or s3://bucket/prefix, encrypted with a key file');
  bank
    .command('add <name> <url>')
    .description('add a bank to this cluster (an empty one is initialised); a wrong key is refused')
    .requiredOption('--key-file <file>', 'the bank key (at least 32 bytes: ferry bank key new FILE); lose it and the backups cannot be read')
    .option('--endpoint <url>', 's3: the endpoint, e.g. http://127.0.0.1:8080 (MinIO, Ceph RGW, Swift s3api)')
    .option('--region <region>', 's3: the region (default us-east-1)')
    .option('--access-key-file <file>', 's3: file holding the access key id')
    .option('--secret-key-file <file>', 's3: file holding the secret access key')
    .option('--read-only', 'only list and restore its checkpoints (another cluster writes it); the store is never written')
    .option('--create', 'the store must hold no bank yet (refused when it does)')
    .option('--json', 'print JSON (the bank)')
    .action(async (name: string, url: string, f: BankAddFlags & { json?: boolean }) => {
      const r = await apiCall<{ bank: BankRecord }>(api(), 'POST', '/v1/banks', bankAddBody(name, url, f, (p) => readFileSync(p)));
      console.log(f.json ? JSON.stringify(r.bank, null, 2) : `${r.bank.name} (bank ${r.bank.bankId}${r.bank.readOnly ? ', read-only' : ''})`);
    });
  bank
    .command('key')
    .description('bank keys')
    .command('new <file>')
    .description(`write a new random ${NEW_KEY_BYTES}-byte bank key to FILE (mode 0600; an existing file is never overwritten)`)
    .action((file: string) => {
      try {
        writeFileSync(file, randomBytes(NEW_KEY_BYTES), { mode: 0o600, flag: 'wx' });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new FerryError('INVALID_REQUEST', `${file} exists: ferry never overwrites a key (a lost key loses its bank's backups); pick another file`);
        throw new FerryError('INVALID_REQUEST', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
      }
      console.log(file);
      process.stderr.write(`ferry: keep a copy of ${file} away from this cluster: without it the bank's backups cannot be read\n`);
    });
  bank
    .command('ls')
    .description("this cluster's banks")
    .option('--json', 'print JSON (an array of banks)')
    .option('-q, --quiet', 'print names only')
    .action(async (o: { json?: boolean; quiet?: boolean }) => {
      const { banks } = await apiCall<{ banks: BankRecord[] }>(api(), 'GET', '/v1/banks');
      const text = o.json ? JSON.stringify(banks, null, 2) : o.quiet ? banks.map((b) => b.name).join('\n') : bankTable(banks);
      if (text) console.log(text);
    });
  bank
    .command('inspect <name>')
    .description('show a bank and what it holds (JSON)')
    .option('--json', 'print JSON (the default)')
    .action(async (name: string) => {
      console.log(JSON.stringify(await apiCall(api(), 'GET', path(name)), null, 2));
    });
  bank
    .command('rm <name>')
    .description('forget a bank in this cluster; its data stays where it is')
    .action(async (name: string) => {
      const r = await apiCall<{ url: string }>(api(), 'DELETE', path(name));
      console.log(name);
      process.stderr.write(`ferry: only this cluster forgot bank ${name}; its backups stay at ${r.url} (ferry bank add ${name} ${r.url} --key-file ... brings it back)\n`);
    });
  bank
    .command('gc <name>')
    .description('remove the chunks no checkpoint uses (safe while backups run: it waits for them)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const bar = progressFeed(`${name}: gc`, !!o.json);
      const r = await apiStream<{ removed: number; removedBytes: number; kept: number; unusedKept: number; packsRemoved: number; packsRepacked: number }>(api(), 'POST', `${path(name)}/gc`, {}, bar.feed).finally(bar.stop);
      const unused = r.unusedKept > 0 ? `, ${r.unusedKept} unused left in mostly-live packs (they go when more of their pack is unused)` : '';
      console.log(o.json ? JSON.stringify(r, null, 2) : `bank ${name}: ${r.removed} chunks removed (${formatSize(r.removedBytes)}; ${r.packsRemoved} packs removed, ${r.packsRepacked} repacked), ${r.kept} kept${unused}`);
    });
  bank
    .command('check <name>')
    .description('prove every checkpoint\'s chunks exist; with --read-data, read and verify a share of them (exit 1 when any problem)')
    .option('--read-data <percent>', 'read, decrypt and hash this share of the chunks, e.g. 10%')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { readData?: string; json?: boolean }) => {
      const body = o.readData === undefined ? {} : { readDataPercent: parsePercent(o.readData) };
      const bar = progressFeed(`${name}: check`, !!o.json);
      const r = await apiStream<CheckAnswer>(api(), 'POST', `${path(name)}/check`, body, bar.feed).finally(bar.stop);
      console.log(o.json ? JSON.stringify(r, null, 2) : checkText(name, r));
      if (r.problems.length) process.exitCode = CHECK_FAILED_EXIT;
    });
}
