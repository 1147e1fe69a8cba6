/**
 * Where ferry keeps its files unless the config says otherwise. Apart from config.ts, so that the
 * CLI's client commands can name the API socket without loading the config's schema (zod).
 */
export const DEFAULT_DATA_DIR = '/var/lib/ferry';
export const DEFAULT_API_SOCKET = '/run/ferry/ferry.sock';
