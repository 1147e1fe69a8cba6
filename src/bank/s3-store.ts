import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { FerryError } from '../errors';
import { spooled, type SpoolReader } from './object-writer';
import type { BankStore, ObjectWriter, StoredObject } from './types';
import { checkKey, checkRange, shortRange } from './store-key';
import { YoungGarbage } from './young-garbage';

/** S3's limit on keys per DeleteObjects request. */
const DELETE_BATCH = 1000;

/** Where an S3 bank lives and how to reach it; the keys are file contents, never logged. */
export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing '/'; '' = the bucket's root. */
  prefix: string;
  /** The normalised s3:// URL, for messages. */
  url: string;
  /** A store other than AWS (MinIO, Ceph RGW, Swift's s3api): path-style requests to it. */
  endpoint?: string;
  region?: string;
  /** Without both, the SDK's default chain (environment, ~/.aws, instance role) is used. */
  accessKey?: string;
  secretKey?: string;
  /** Keys per ListObjectsV2 page and per DeleteObjects request (default and S3's maximum: 1000); tests make pages small. */
  listPageSize?: number;
  deleteBatch?: number;
  /** Where packs are staged on local disk before they are put (default: the OS's temporary directory). */
  spoolDir?: string;
  /** Timeouts (ms): connecting, a socket idle, a whole request. Tests shorten them. */
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** Network errors that mean the store could not be reached (or stopped answering). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);
const CREDENTIALS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'CredentialsProviderError']);
const FULL = new Set(['EntityTooLarge', 'QuotaExceeded', 'InsufficientStorage', 'ServiceQuotaExceeded']);
/** Answers worth another attempt at a streamed put, as the SDK retries the others. */
const TRANSIENT = new Set([...UNREACHABLE, 'SlowDown', 'InternalError', 'ServiceUnavailable']);
/** Attempts at a streamed put, and the wait before the second (x4 before each after). */
const PUT_ATTEMPTS = 3;
const RETRY_DELAY_MS = 100;

/** Fields the SDK's errors carry (ServiceException, or a Node network error it passed through). */
interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number };
}

/**
 * A bank in an S3 bucket (AWS, MinIO, Ceph RGW, OpenStack Swift's s3api), through the AWS SDK v3.
 * Set for the oldest of them (Swift 2.30): no aws-chunked uploads or response checksums unless an
 * operation requires them, and Content-MD5 on DeleteObjects. Retries are the SDK's (3 attempts)
 * and every request has a deadline, so an unreachable store fails within seconds.
 */
export class S3Store implements BankStore {
  readonly url: string;
  private readonly client: S3Client;
  private readonly bulkClient: S3Client;
  /** Puts of staged packs: bodies streamed from disk, retried here (the SDK retries no streamed body). */
  private readonly streamClient: S3Client;
  private readonly spoolDir: string;
  private readonly bucket: string;
  private readonly base: string;
  private readonly where: string;
  private readonly pageSize: number | undefined;
  private readonly deleteBatch: number;
  /** Set once a request found the bucket: a HEAD's bare 404 then means "no such key". */
  private bucketSeen = false;

  constructor(o: S3StoreOptions) {
    // The SDK warns once, on stderr, that its releases after January 2027 need Node 22: ours is
    // pinned, so the notice only confuses a user reading `ferry` output.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.url = o.url;
    this.bucket = o.bucket;
    this.base = o.prefix === '' ? '' : `${o.prefix}/`;
    this.where = o.endpoint ?? `AWS S3 (${o.region ?? 'us-east-1'})`;
    this.pageSize = o.listPageSize;
    this.deleteBatch = Math.min(o.deleteBatch ?? DELETE_BATCH, DELETE_BATCH);
    this.spoolDir = o.spoolDir ?? tmpdir();
    this.client = makeClient(o, o.idleTimeoutMs ?? 20_000);
    // The SDK warns on the console when a streamed request fails: putStaged says what failed instead.
    this.streamClient = makeClient(o, o.idleTimeoutMs ?? 20_000, { maxAttempts: 1, logger: QUIET });
    // A store answers DeleteObjects only once every key is gone (Swift: 2 at a time by default),
    // silent meanwhile: 1000 keys can take longer than the idle limit that catches a hung store.
    this.bulkClient = makeClient(o, Math.max(o.idleTimeoutMs ?? 20_000, 180_000));
    // Swift 2.30 (and S3 itself, for DeleteObjects) wants Content-MD5, which SDK v3 no longer sends.
    this.bulkClient.middlewareStack.add(
      (next, context) => async (args) => {
        const req = args.request as { headers?: Record<string, string>; body?: unknown };
        if (context.commandName === 'DeleteObjectsCommand' && req.headers && (typeof req.body === 'string' || Buffer.isBuffer(req.body))) {
          req.headers['content-md5'] = createHash('md5').update(req.body).digest('base64');
        }
        return next(args);
      },
      { step: 'build', name: 'ferryContentMd5', override: true },
    );
  }

  async put(key: string, body: Buffer): Promise<void> {
    checkKey(key);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.base + key, Body: body, ContentLength: body.length }));
    } catch (err) {
      throw this.mapped(err, 'put', key);
    }
  }

  /** Staged in a file under spoolDir and streamed at commit (PutObject takes one body, of known length). */
  create(key: string): ObjectWriter {
    checkKey(key);
    return spooled(this.spoolDir, `object ${key} of bank ${this.url}`, (read, size) => this.putStaged(key, read, size));
  }

  /** PutObject of a staged object, read afresh for each attempt. */
  private async putStaged(key: string, read: SpoolReader, size: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const body = read();
      try {
        await this.streamClient.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.base + key, Body: body, ContentLength: size }));
        return;
      } catch (err) {
        body.destroy();
        const http = status(err) ?? 0;
        if (attempt >= PUT_ATTEMPTS || !(http >= 500 || http === 429 || TRANSIENT.has(errorCode(err)))) throw this.mapped(err, 'put', key);
        await sleep(RETRY_DELAY_MS * 4 ** (attempt - 1));
      }
    }
  }

  async get(key: string): Promise<Buffer | null> {
    checkKey(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.base + key }));
      return await bodyBytes(res.Body, res.ContentLength);
    } catch (err) {
      if (errorCode(err) === 'NoSuchKey' || status(err) === 404 && errorCode(err) !== 'NoSuchBucket') return null;
      throw this.mapped(err, 'get', key);
    }
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer | null> {
    checkKey(key);
    checkRange(this.url, key, offset, length);
    let body: Buffer;
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.base + key, Range: `bytes=${offset}-${offset + length - 1}` }),
      );
      body = await bodyBytes(res.Body, res.ContentLength, into);
    } catch (err) {
      if (errorCode(err) === 'NoSuchKey' || status(err) === 404 && errorCode(err) !== 'NoSuchBucket') return null;
      // A range starting at or past the end: the object is shorter than the index says.
      if (status(err) === 416 || errorCode(err) === 'InvalidRange') throw shortRange(this.url, key, offset, length, 0);
      throw this.mapped(err, 'get', key);
    }
    if (body.length < length) throw shortRange(this.url, key, offset, length, body.length);
    // A store that ignores Range sends the whole object (200): take the asked bytes from it.
    if (body.length === length) return body;
    if (body.length < offset + length) throw shortRange(this.url, key, offset, length, Math.max(0, body.length - offset));
    return body.subarray(offset, offset + length);
  }

  async has(key: string): Promise<boolean> {
    checkKey(key);
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.base + key }));
      this.bucketSeen = true;
      return true;
    } catch (err) {
      // HEAD has no body: a 404 names no error code, so a missing bucket looks the same as a missing
      // key here; one listing tells them apart (once: a bucket is not expected to vanish).
      if (status(err) === 404 || errorCode(err) === 'NotFound' || errorCode(err) === 'NoSuchKey') {
        if (!this.bucketSeen) await this.listPage('config', undefined, 1);
        return false;
      }
      throw this.mapped(err, 'head', key);
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    if (prefix !== '') checkKey(prefix, true);
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.listPage(prefix, token, this.pageSize);
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.base)) continue;
        out.push({ key: o.Key.slice(this.base.length), size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const k of keys) checkKey(k);
    for (let i = 0; i < keys.length; i += this.deleteBatch) {
      const batch = keys.slice(i, i + this.deleteBatch);
      let res;
      try {
        res = await this.bulkClient.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.base + k })), Quiet: true },
          }),
        );
      } catch (err) {
        throw this.mapped(err, 'delete', batch[0]);
      }
      // Quiet mode lists only failures; a key that was not there is no failure.
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0];
        const key = (first.Key ?? '').slice(this.base.length);
        throw this.mapped({ name: first.Code, Code: first.Code, message: first.Message, $metadata: {} }, 'delete', key, failed.length);
      }
    }
  }

  private async listPage(prefix: string, token: string | undefined, max?: number): Promise<ListObjectsV2CommandOutput> {
    try {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.base + prefix, ContinuationToken: token, MaxKeys: max }),
      );
      this.bucketSeen = true;
      return page;
    } catch (err) {
      throw this.mapped(err, 'list', prefix);
    }
  }

  /** The FerryError for an SDK failure: what happened, to which bank, what to check. */
  private mapped(err: unknown, op: string, key: string, count = 1): FerryError {
    if (err instanceof FerryError) return err;
    const code = errorCode(err);
    const http = status(err);
    const what = `${op} ${key === '' ? '(root)' : key}${count > 1 ? ` and ${count - 1} more` : ''}`;
    const details = { url: this.url, endpoint: this.where, op, key, code, status: http };
    const opts = { cause: err, details };
    if (http === undefined && (UNREACHABLE.has(code) || /timed? ?out|socket hang up|ECONNREFUSED/i.test(messageOf(err)))) {
      return new FerryError('BANK_UNAVAILABLE', `cannot reach bank ${this.url} at ${this.where} (${code || messageOf(err)}): check the endpoint and that the store is up`, opts);
    }
    if (http === 507 || http === 413 || FULL.has(code) || /quota/i.test(code)) {
      return new FerryError('BANK_UNAVAILABLE', `bank ${this.url} at ${this.where} is full (${code || `HTTP ${http}`} on ${what}): raise the bucket's quota or free space (bank gc removes unused chunks)`, opts);
    }
    if (code === 'AccessDenied' && (op === 'put' || op === 'delete')) {
      // The store took the signature (the key is right) but refuses this key writes.
      return new FerryError(
        'BANK_READ_ONLY',
        `bank ${this.url} at ${this.where} refuses writes (AccessDenied on ${what}): check that the key in the --access-key-file given to ferry bank add may write to the bucket ${this.bucket}, or add the bank with --read-only`,
        opts,
      );
    }
    if (http === 403 || http === 401 || CREDENTIALS.has(code)) {
      return new FerryError(
        'BANK_UNAVAILABLE',
        `bank ${this.url} at ${this.where} refused the credentials (${code || `HTTP ${http}`} on ${what}): check the files given as --access-key-file and --secret-key-file to ferry bank add, and that this key may read and write the bucket ${this.bucket}`,
        opts,
      );
    }
    if (code === 'NoSuchBucket') {
      return new FerryError('BANK_UNAVAILABLE', `bank ${this.url}: the bucket ${this.bucket} does not exist at ${this.where}: create it, or check the bucket in the URL and the --endpoint`, opts);
    }
    return new FerryError(
      'BANK_UNAVAILABLE',
      `bank ${this.url} at ${this.where} failed ${what} (${[http && `HTTP ${http}`, code, messageOf(err)].filter(Boolean).join(': ')}): check the store's health and logs, then try again`,
      opts,
    );
  }
}

/** A logger that says nothing (the SDK's default for a failed streamed request is console.warn). */
const QUIET = { trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function makeClient(o: S3StoreOptions, idleTimeoutMs: number, extra: { maxAttempts?: number; logger?: typeof QUIET } = {}): S3Client {
  return new S3Client({
    region: o.region ?? 'us-east-1',
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
    ...(o.accessKey !== undefined && o.secretKey !== undefined
      ? { credentials: { accessKeyId: o.accessKey, secretAccessKey: o.secretKey } }
      : {}),
    // Plain PUT bodies with Content-Length (Swift refuses aws-chunked), no CRC on every GET.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: extra.maxAttempts ?? 3,
    ...(extra.logger ? { logger: extra.logger } : {}),
    requestHandler: {
      connectionTimeout: o.connectTimeoutMs ?? 3_000,
      socketTimeout: idleTimeoutMs,
      requestTimeout: Math.max(o.requestTimeoutMs ?? 120_000, idleTimeoutMs),
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true, maxSockets: 16 },
      httpsAgent: { keepAlive: true, maxSockets: 16 },
    },
  });
}

function errorCode(err: unknown): string {
  const e = err as SdkError;
  return e?.Code ?? e?.code ?? e?.name ?? '';
}

function status(err: unknown): number | undefined {
  const e = err as SdkError;
  return e?.$metadata?.httpStatusCode ?? e?.$response?.statusCode;
}

function messageOf(err: unknown): string {
  return (err as SdkError)?.message ?? String(err);
}

/**
 * The socket's reads of every body copied into a caller's buffer (a restore's ranges): a minor
 * collection after every 4 MiB of them. A 1 GiB restore from Swift peaked at 215-227 MB with it
 * against 243-270 MB without (glibc's main arena held 81 MB of freed reads), in the same time.
 */
const socketReads = new YoungGarbage(4 * 1024 * 1024);

/**
 * An object's body in one buffer, each piece copied once into a buffer of the announced length (or
 * `into`, when it is long enough) as it arrives (the SDK's transformToByteArray keeps every piece, then copies them all into a new
 * array: twice the memory and copies on a restore's hot path). Without a length, or when the body
 * runs past it, the pieces are joined at the end.
 */
async function bodyBytes(body: unknown, contentLength: number | undefined, into?: Buffer): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const pieces = body as AsyncIterable<Uint8Array>;
  if (contentLength === undefined || !Number.isSafeInteger(contentLength) || contentLength < 0) {
    const parts: Buffer[] = [];
    for await (const p of pieces) parts.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    return Buffer.concat(parts);
  }
  const out = into && into.length >= contentLength ? into.subarray(0, contentLength) : Buffer.allocUnsafe(contentLength);
  let at = 0;
  const extra: Buffer[] = [];
  for await (const p of pieces) {
    socketReads.made(p.byteLength);
    const piece = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    const fits = Math.min(piece.length, contentLength - at);
    piece.copy(out, at, 0, fits);
    at += fits;
    if (fits < piece.length) extra.push(piece.subarray(fits));
  }
  if (extra.length > 0) return Buffer.concat([out, ...extra]);
  return at === contentLength ? out : out.subarray(0, at);
}
