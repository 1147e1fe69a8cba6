import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config';
import { readToken } from '../config/read-token';
import type { Logger } from '../log';

/** Where `ferry serve` keeps the dashboard's token when the config names none. */
export function webTokenPath(dataDir: string): string {
  return join(dataDir, 'web-token');
}

/**
 * The token the dashboard's login asks for: web.tokenFile, else control.tokenFile, else
 * `<dataDir>/web-token`, made at first start (32 random bytes, mode 0600, root's to read). The
 * dashboard always asks for a token, on loopback too: any local user reaches 127.0.0.1.
 */
export function dashboardToken(config: Config, log: Logger): { token: string; file: string } {
  const configured = config.web.tokenFile ?? config.control.tokenFile;
  if (configured) return { token: readToken(configured), file: configured };
  const file = webTokenPath(config.dataDir);
  if (!existsSync(file)) {
    // 'wx': two ferries starting on one data dir do not overwrite each other's token.
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      log.info({ file }, 'dashboard token created: log in with the token in this file');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  return { token: readToken(file), file };
}
