import { FerryError } from '../errors';
import type { Logger } from '../log';
import type { BankLocation, ProgressSink } from '../bank/types';
import { formatSize } from '../volume/size';
import type { ControlClient } from '../wire/control-client';
import type { BankRecord, BankSecrets } from '../wire/records';
import type { BankKit, CheckResult, GcResult, OpenBank } from './bank-kit';

/** The smallest key file a bank takes (common.md: the format). */
export const MIN_KEY_BYTES = 32;

/** What `ferry bank add` sends: the record's fields, the secrets' file contents, and how to add it. */
export interface BankAddRequest {
  name: string;
  url: string;
  endpoint?: string;
  region?: string;
  /** List and restore only: the store is opened, never written (no config made, backups refused). */
  readOnly: boolean;
  /** The store must hold no bank yet (BANK_EXISTS otherwise). */
  create: boolean;
  secrets: BankSecrets;
}

/** A bank as `ferry bank inspect` shows it: the record and what the bank holds. */
export interface BankInspection {
  bank: BankRecord;
  checkpoints: number;
  volumes: string[];
  newest: string | null;
}

/** Where a bank is, from its record and secrets (what openStore takes). */
export function locationOf(b: Pick<BankRecord, 'url' | 'endpoint' | 'region'>, s: BankSecrets): BankLocation {
  return {
    url: b.url,
    ...(b.endpoint ? { endpoint: b.endpoint } : {}),
    ...(b.region ? { region: b.region } : {}),
    ...(s.accessKey ? { accessKey: s.accessKey } : {}),
    ...(s.secretKey ? { secretKey: s.secretKey } : {}),
  };
}

/** The key's bytes; INVALID_REQUEST when the key file was too short to be a bank key. */
export function keyOf(s: BankSecrets): Buffer {
  const key = Buffer.from(s.keyBase64, 'base64');
  if (key.length < MIN_KEY_BYTES) {
    throw new FerryError('INVALID_REQUEST', `the key file holds ${key.length} bytes; a bank key has at least ${MIN_KEY_BYTES}: make one with ferry bank key new FILE`);
  }
  return key;
}

/**
 * bank-ops (issue 8): the banks this cluster knows (agent part `banks`). Control keeps the records and
 * secrets; an agent opens a bank's store with them whenever it is used (on any host). Every open
 * checks the key against the bank's config.
 */
export class Banks {
  private kitLoaded?: Promise<BankKit>;

  constructor(
    private readonly node: string,
    private readonly control: ControlClient,
    private readonly loadKit: () => Promise<BankKit>,
    private readonly log: Logger,
  ) {}

  /** The bank code, loaded once. */
  kit(): Promise<BankKit> {
    this.kitLoaded ??= this.loadKit();
    return this.kitLoaded;
  }

  /**
   * `ferry bank add`: opens the store with the key (BANK_KEY_WRONG, BANK_UNAVAILABLE: nothing recorded),
   * initialises an empty one unless read-only (a read-only add of an empty store: BANK_NOT_FOUND), then
   * records the bank in control (BANK_EXISTS when the name is taken).
   */
  async add(r: BankAddRequest): Promise<BankRecord> {
    if (await this.control.getBank(r.name)) throw new FerryError('BANK_EXISTS', `a bank named ${r.name} is already added (ferry bank ls); pick another name or ferry bank rm ${r.name} first`);
    const key = keyOf(r.secrets);
    const kit = await this.kit();
    const store = kit.openStore(locationOf({ url: r.url, endpoint: r.endpoint ?? null, region: r.region ?? null }, r.secrets));
    let bank: OpenBank;
    if (r.readOnly) {
      bank = await kit.openBank(store, key);
    } else {
      if (r.create && (await store.has('config'))) {
        throw new FerryError('BANK_EXISTS', `${r.url} already holds a bank: add it without --create to use it, or pick an empty place`);
      }
      bank = await kit.createBank(store, key);
    }
    await bank.close();
    const record = await this.control.addBank(
      { name: r.name, url: r.url, endpoint: r.endpoint ?? null, region: r.region ?? null, readOnly: r.readOnly, bankId: bank.id },
      r.secrets,
      this.node,
    );
    this.log.info({ bank: r.name, url: r.url, readOnly: r.readOnly, bankId: bank.id, op: 'bank-add' }, 'bank added');
    return record;
  }

  /**
   * Runs `fn` with bank `name`'s record and the bank opened with its key, closed after (its sealer's
   * threads). BANK_NOT_FOUND for a name control does not know; BANK_KEY_WRONG, BANK_UNAVAILABLE.
   */
  async using<T>(name: string, fn: (b: { record: BankRecord; bank: OpenBank }) => Promise<T>): Promise<T> {
    const opened = await this.open(name);
    try {
      return await fn(opened);
    } finally {
      await opened.bank.close().catch((err: unknown) => this.log.warn({ err, bank: name }, 'cannot close a bank'));
    }
  }

  private async open(name: string): Promise<{ record: BankRecord; bank: OpenBank }> {
    const record = await this.record(name);
    const secrets = await this.control.bankSecrets(name);
    const kit = await this.kit();
    const bank = await kit.openBank(kit.openStore(locationOf(record, secrets)), keyOf(secrets));
    if (bank.id !== record.bankId) {
      throw new FerryError('BANK_UNAVAILABLE', `${record.url} now holds another bank (id ${bank.id}, bank ${name} was ${record.bankId}): check the URL, or ferry bank rm ${name} and add it again`);
    }
    return { record, bank };
  }

  /** The record, or BANK_NOT_FOUND. */
  async record(name: string): Promise<BankRecord> {
    const record = await this.control.getBank(name);
    if (!record) throw new FerryError('BANK_NOT_FOUND', `no bank named ${name} is added to this cluster: ferry bank ls lists them, ferry bank add adds one`);
    return record;
  }

  /** The record refused for writing when the bank was added read-only. */
  static writable(record: BankRecord, what: string): void {
    if (record.readOnly) {
      throw new FerryError('BANK_READ_ONLY', `bank ${record.name} was added read-only to this cluster: it cannot ${what}; list and restore its checkpoints, or add it again without --read-only`);
    }
  }

  list(): Promise<BankRecord[]> {
    return this.control.listBanks();
  }

  /** `ferry bank inspect`: the record, and the bank's checkpoints in brief (the bank is opened). */
  async inspect(name: string): Promise<BankInspection> {
    return this.using(name, async ({ record, bank }) => {
      const cps = await bank.listCheckpoints();
      return { bank: record, checkpoints: cps.length, volumes: [...new Set(cps.map((c) => c.volume))].sort(), newest: cps.at(-1)?.id ?? null };
    });
  }

  /** `ferry bank rm`: forgets the bank in control; its data stays in the store. */
  async remove(name: string): Promise<void> {
    await this.control.removeBank(name, this.node);
    this.log.info({ bank: name, op: 'bank-remove' }, 'bank forgotten; its data stays');
  }

  /** `ferry bank gc`: removes the chunks no checkpoint uses, under the bank's exclusive gc lock. */
  async gc(name: string, progress?: ProgressSink): Promise<GcResult> {
    const started = Date.now();
    const r = await this.using(name, async ({ record, bank }) => {
      Banks.writable(record, 'be garbage-collected');
      return bank.gc({ host: this.node, ...(progress ? { progress } : {}) });
    });
    await this.event('bank-gc', `bank ${name}: ${r.removed} chunks no checkpoint uses removed (${formatSize(r.removedBytes)}; ${r.packsRemoved} packs removed, ${r.packsRepacked} repacked), ${r.kept} kept${r.unusedKept > 0 ? ` and ${r.unusedKept} unused left in mostly-live packs` : ''}, in ${secondsSince(started)} s`);
    return r;
  }

  /** `ferry bank check`: every referenced chunk exists; with a share, that share is read and verified. */
  async check(name: string, readDataPercent: number | undefined, progress?: ProgressSink): Promise<CheckResult> {
    const r = await this.using(name, ({ bank }) => bank.check({ ...(readDataPercent !== undefined ? { readDataPercent } : {}), ...(progress ? { progress } : {}) }));
    const missing = r.problems.filter((p) => p.problem === 'missing').length;
    await this.event(
      'bank-check',
      `bank ${name}: ${r.checkpoints} checkpoints, ${r.chunks} chunks, ${r.read} read; ` +
        (r.problems.length ? `${missing} missing, ${r.problems.length - missing} corrupt: ${r.problems.map((p) => p.chunk.slice(0, 12)).join(', ')}` : 'no problems'),
    );
    return r;
  }

  /** An event in control's log; one that cannot be recorded never fails the operation. */
  async event(kind: string, detail: string, volume?: string): Promise<void> {
    await this.control
      .recordEvent({ node: this.node, kind, detail: detail.slice(0, 4000), ...(volume ? { volume } : {}) })
      .catch((err: unknown) => this.log.warn({ err, kind }, 'cannot record a bank event'));
  }
}

/** Whole seconds since `started` (ms), one decimal. */
export function secondsSince(started: number): number {
  return Math.round((Date.now() - started) / 100) / 10;
}

/** A long bank operation's progress callback (the local API streams it). */
export type { ProgressSink } from '../bank/types';
