/**
 * Seals and opens objects for one bank's seal key. `InlineSealer` does it on the calling thread;
 * `seal-pool.ts` spreads the work over worker threads (zstd and AES-GCM off the event loop).
 */
import { openSealed, seal } from './seal';

export interface Sealer {
  /** `plain` sealed for object key `ad`. */
  seal(plain: Buffer, ad: string): Promise<Buffer>;
  /** The plaintext of a sealed object of key `ad`; BANK_CORRUPT when it does not open. */
  open(sealed: Buffer, ad: string): Promise<Buffer>;
  /** Frees threads, if any. */
  close(): Promise<void>;
}

export class InlineSealer implements Sealer {
  constructor(private readonly key: Buffer, private readonly url: string) {}
  async seal(plain: Buffer, ad: string): Promise<Buffer> {
    return seal(this.key, plain, ad);
  }
  async open(sealed: Buffer, ad: string): Promise<Buffer> {
    return openSealed(this.key, sealed, ad, this.url);
  }
  async close(): Promise<void> {}
}
