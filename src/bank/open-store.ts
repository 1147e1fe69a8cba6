import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../errors';
import { FileStore } from './file-store';
import { S3Store } from './s3-store';
import type { BankLocation, BankStore } from './types';

/** What a bank URL names, parsed (pure): a directory, or a bucket and a key prefix. */
export type ParsedBankUrl =
  | { scheme: 'file'; path: string; url: string }
  | { scheme: 's3'; bucket: string; prefix: string; url: string };

/** Bucket names S3-compatible stores accept (AWS's rules, dots and capitals left to the store). */
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/;
/** A prefix is '/'-separated names like the store's keys. */
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;

function invalid(url: string, why: string): FerryError {
  return new FerryError(
    'INVALID_REQUEST',
    `bank URL ${JSON.stringify(url)} ${why}: use file:///absolute/path (a local disk or NFS mount) or s3://bucket/prefix (with --endpoint for a store other than AWS)`,
    { details: { url } },
  );
}

/**
 * Parses a bank URL: `file:///path` or `s3://bucket[/prefix]`. The normalised URL it returns is the
 * one messages show. Throws INVALID_REQUEST saying what is wrong (never echoing credentials: a URL
 * carrying user:password is refused before anything else is read from it).
 */
export function parseBankUrl(raw: string): ParsedBankUrl {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw invalid(raw, 'is not a URL');
  }
  if (u.username !== '' || u.password !== '') {
    // Never repeat what might be a secret.
    throw invalid(`${u.protocol}//…`, 'holds credentials; give them as files (--access-key-file, --secret-key-file), never in the URL');
  }
  if (u.search !== '' || u.hash !== '') throw invalid(raw, 'has a query or fragment');
  if (u.protocol === 'file:') {
    if (u.host !== '' && u.host !== 'localhost') throw invalid(raw, `names host ${u.host}: a file:// bank is a directory on this host (mount an NFS share and use its path)`);
    let path: string;
    try {
      path = fileURLToPath(u);
    } catch {
      throw invalid(raw, 'is not a file path');
    }
    if (!isAbsolute(path)) throw invalid(raw, 'is not an absolute path');
    path = normalize(path);
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    if (path === '/') throw invalid(raw, 'names the root directory');
    return { scheme: 'file', path, url: `file://${path}` };
  }
  if (u.protocol === 's3:') {
    const bucket = u.hostname;
    if (bucket === '') throw invalid(raw, 'names no bucket');
    if (!BUCKET.test(bucket)) throw invalid(raw, `names bucket ${JSON.stringify(bucket)}, not a valid bucket name`);
    if (u.port !== '') throw invalid(raw, 'has a port: give the store\'s address with --endpoint');
    const segments = decodeURIComponent(u.pathname).split('/').filter((s) => s !== '');
    if (!segments.every((s) => PREFIX_SEGMENT.test(s) && s !== '.' && s !== '..')) {
      throw invalid(raw, 'has a prefix with characters other than letters, digits, ".", "_", "-" and "/"');
    }
    const prefix = segments.join('/');
    return { scheme: 's3', bucket, prefix, url: `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}` };
  }
  throw invalid(raw, `has scheme ${u.protocol.replace(/:$/, '')}, which ferry does not store banks on`);
}

/**
 * The store a bank location names. Nothing is contacted yet: the first call reaches the store.
 * `spoolDir`: where an s3:// store stages packs on local disk before it puts them (default: the OS's
 * temporary directory; the agent gives `<dataDir>/bank-work/spool`).
 */
export function openStore(loc: BankLocation, o: { spoolDir?: string } = {}): BankStore {
  const parsed = parseBankUrl(loc.url);
  if (parsed.scheme === 'file') {
    if (loc.endpoint !== undefined || loc.accessKey !== undefined || loc.secretKey !== undefined) {
      throw invalid(loc.url, 'is a directory: --endpoint and the key files are for s3:// banks only');
    }
    return new FileStore(parsed.path, parsed.url);
  }
  if (loc.endpoint !== undefined) {
    let e: URL | undefined;
    try {
      e = new URL(loc.endpoint);
    } catch {
      e = undefined;
    }
    if (!e || (e.protocol !== 'http:' && e.protocol !== 'https:') || e.username !== '' || e.password !== '' || e.search !== '') {
      throw new FerryError('INVALID_REQUEST', `bank endpoint ${JSON.stringify(e ? `${e.protocol}//${e.host}` : loc.endpoint)} is not an http:// or https:// address of an S3 store (like http://127.0.0.1:8080 or https://s3.example.com)`, {
        details: { url: parsed.url },
      });
    }
  }
  if ((loc.accessKey === undefined) !== (loc.secretKey === undefined)) {
    throw invalid(loc.url, 'has only one of the access key and secret key files: give both, or neither for the AWS default chain');
  }
  return new S3Store({ bucket: parsed.bucket, prefix: parsed.prefix, url: parsed.url, endpoint: loc.endpoint, region: loc.region, accessKey: loc.accessKey, secretKey: loc.secretKey, spoolDir: o.spoolDir });
}
