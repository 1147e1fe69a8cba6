/**
 * The bank's shared shapes: what the object stores, the format (Bank), the tree archive and the
 * agent's backup runner agree on. src/bank/ imports only errors, exec and stream code: never the
 * agent, control or the CLI (they import it).
 *
 * Layout of a bank under its URL (every key relative to the bank's root / prefix):
 *   config                       plaintext JSON: format, version, bank id, chunker params, key check
 *   packs/<pp>/<packId>          sealed chunks back to back (~16 MiB); each sealed as its own object
 *                                would be, AD `chunks/<id[0..2]>/<id>`; id = hex HMAC-SHA256(chunk-id key, plaintext)
 *   index/<packId>               sealed index of one pack ([chunk id, offset, length] each), written
 *                                after its pack: a pack without one is an orphan no reader sees
 *   checkpoints/<checkpointId>   one sealed manifest, written LAST (a checkpoint is listed or invisible)
 *   locks/<lockId>               plaintext JSON lock: {kind: 'backup'|'gc'|..., host, started, refreshed}
 */
import type { Readable } from 'node:stream';

/** One object in a store, as its listing shows it. */
export interface StoredObject {
  key: string;
  size: number;
  /** Last write, ms since the epoch (S3 LastModified, a file's mtime). */
  modifiedMs: number;
}

/**
 * Where a bank's objects live: file:// (src/bank/file-store.ts) or s3:// (src/bank/s3-store.ts).
 * Keys are '/'-separated, relative to the bank's root. Every failure is a FerryError: BANK_UNAVAILABLE
 * (unreachable, credentials refused, full, errors — the message names the bank URL and what to
 * check), BANK_READ_ONLY (writes refused), CHECKPOINT_NOT_FOUND never (get of a missing key → null).
 */
export interface BankStore {
  /** The URL it was opened with, for messages (never holds credentials). */
  readonly url: string;
  /** Writes the whole object atomically: a reader sees the old object, or none, or all of the new one. */
  put(key: string, body: Buffer): Promise<void>;
  /**
   * An object written in pieces (a pack, as its chunks are sealed), seen by readers only once
   * committed, and then whole, as put.
   */
  create(key: string): ObjectWriter;
  /** The object's bytes, or null when there is no such key. */
  get(key: string): Promise<Buffer | null>;
  /**
   * `length` bytes of the object from `offset` (a chunk inside a pack), or null when there is no
   * such key; BANK_CORRUPT when the object ends before offset + length. With `into` (at least
   * `length` bytes) the bytes may be read into it and a view of it returned, sparing a fresh buffer;
   * the store writes nothing into it once the promise has settled.
   */
  getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer | null>;
  /** True when the key exists. */
  has(key: string): Promise<boolean>;
  /** Every object whose key starts with `prefix`, in key order (all pages). */
  list(prefix: string): Promise<StoredObject[]>;
  /** Deletes the keys; a missing key is fine. */
  delete(keys: readonly string[]): Promise<void>;
}

/** An object being written piece by piece (BankStore.create). */
export interface ObjectWriter {
  /**
   * Writes `bytes` at byte `at` of the object. Pieces may be written concurrently and never overlap;
   * at commit they cover it from 0 to its size. The store reads `bytes` only until the promise settles.
   */
  write(bytes: Buffer, at: number): Promise<void>;
  /** Stores the object, `size` bytes (every write settled first), under its key: atomically, as put. */
  commit(size: number): Promise<void>;
  /** Drops what was written (a failed pack): the key is left as it was. */
  abort(): Promise<void>;
}

/** What `bank add` and a backup need to open a store; secrets are file contents, never logged. */
export interface BankLocation {
  /** file:///path or s3://bucket/prefix */
  url: string;
  /** s3: endpoint URL (http://127.0.0.1:8080), region (default us-east-1). */
  endpoint?: string;
  region?: string;
  /** s3: the contents of --access-key-file / --secret-key-file (trimmed). */
  accessKey?: string;
  secretKey?: string;
}

/** A chunk as a file's extent refers to it: `length` bytes of chunk `id` starting at `offset`. */
export interface Extent {
  id: string;
  offset: number;
  length: number;
}

/** One entry of a checkpoint's tree, in walk order (a directory before what it holds). */
export interface TreeEntry {
  /** Relative to the volume root, '/'-separated, no leading '/'; '' is the root itself. */
  path: string;
  type: 'dir' | 'file' | 'symlink' | 'hardlink' | 'fifo' | 'chardev' | 'blockdev';
  /** Permission bits and setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string (exact beyond 2^53). */
  mtimeNs: string;
  /** file: logical size (holes included). */
  size?: number;
  /** file: the data, in order; the bytes between extents (and after the last, up to size) are holes. */
  extents?: Array<Extent & { at: number }>;
  /** symlink: its target; hardlink: the path of the first entry of the same inode. */
  target?: string;
  /** chardev/blockdev: device number (major << 8 | minor style as stat's rdev). */
  rdev?: number;
  /** Extended attributes (POSIX ACLs included): name → base64 value. */
  xattrs?: Record<string, string>;
  /** For the next backup's reuse of unchanged files: stat's ino and ctime where the backend keeps them. */
  ino?: number;
  ctimeNs?: string;
}

/** A checkpoint as `backup ls` shows it (decrypted from its manifest): one record with the wire's. */
export type { CheckpointSummary } from '../volume/checkpoint-summary';

/** Counters a long operation reports, for the progress bar and `--json`. */
export interface BankProgress {
  phase: string;
  doneBytes: number;
  totalBytes: number;
  files?: number;
  uploadedBytes?: number;
  reusedBytes?: number;
}
export type ProgressSink = (p: BankProgress) => void;

/** Cuts one data stream into content-defined chunks (FastCDC, the bank's own gear table). */
export interface ChunkCutter {
  /**
   * Feeds bytes; returns every chunk completed by them (copies: the caller may keep them). The bytes
   * are copied before push returns, so the caller may reuse `data` (one read buffer for a whole walk).
   */
  push(data: Buffer): Buffer[];
  /** The last, short chunk (null when nothing is pending); the cutter is then empty again. */
  end(): Buffer | null;
  /**
   * Like push, without a copy per chunk: the chunks are views of the cutter's own buffer, valid only
   * until the next call to the cutter (use or copy them first). At most `maxChunk` bytes a call.
   */
  pushViews(data: Buffer): Buffer[];
  /** Like end, as a view (valid until the next call). */
  endView(): Buffer | null;
  /**
   * Room in the cutter's own buffer for the next bytes (`maxChunk` of it), to read into instead of
   * copying: write up to its length, then call commitViews with how many were written. Valid until
   * the next call to the cutter.
   */
  space(): Buffer;
  /** Feeds the first `n` bytes written into space(); the chunks they complete, as pushViews gives them. */
  commitViews(n: number): Buffer[];
  /** The largest chunk it cuts, and the most pushViews takes at once. */
  readonly maxChunk: number;
}

/** A bank's chunks, by id: put seals and uploads a chunk unless the bank has it already. */
export interface ChunkStore {
  /**
   * The chunk's id (keyed HMAC of `plain`, or `id` when the caller worked it out with idOf); uploads
   * it sealed unless it is known to the bank. It reads `plain` only during the call (the bytes are
   * copied, or known to the bank, before it returns): the caller may reuse the buffer at once.
   */
  put(plain: Buffer, id?: string): Promise<string>;
  /** The id a chunk of these bytes has (the keyed HMAC put works out when not given it). */
  idOf(plain: Buffer): string;
  /**
   * True when a put of chunk `id` would store nothing: the bank is known to have it, or a put of it
   * is under way. The caller may then skip the put (and the copy of its bytes a put needs).
   */
  holds(id: string): boolean;
  /** The plaintext of chunk `id`; BANK_CORRUPT when missing, unreadable or not hashing to `id`. */
  get(id: string): Promise<Buffer>;
  /**
   * `ids` (each once) in the order that gets them at the least cost: a bank's by pack and offset in
   * it, so that one ranged read serves the chunks stored together and none is read twice. Optional:
   * a store without it is read in the order given.
   */
  readOrder?(ids: readonly string[]): Promise<string[]>;
  /**
   * Gives back a buffer get returned, once the caller holds no reference to it (nor any view): the
   * store may open a later chunk into the same memory. Optional for the caller (an unreleased
   * buffer is collected), fatal to misuse: never release a chunk something may still read.
   */
  release(plain: Buffer): void;
  /** Sealed bytes this store uploaded so far (chunks in packs whose index is stored). */
  uploadedBytes(): number;
  /**
   * Closes the pack being filled and waits until every pack and its index is stored (a manifest
   * may name the chunks put so far only after this); throws the first upload failure.
   */
  flush(): Promise<void>;
  /**
   * Frees what writing holds: after a failed backup, the pack being filled (an open file, a staged
   * copy) is dropped, its chunks not stored; after a flush there is nothing left. Call it once the
   * backup is over, whatever its outcome; nothing is put after.
   */
  close(): Promise<void>;
}

/** Readable is re-exported for stores and archive code that stream. */
export type { Readable };
