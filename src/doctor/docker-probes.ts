import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { FerryError } from '../errors';
import { sendJson, type JsonPeer } from '../wire/json-client';
import type { DoctorCheck } from '../wire/records';
import { dockerdCheck, pluginActivatedCheck, pluginSocketCheck } from './checks';

/** What `ferry doctor` asks dockerd and the plugin socket: reads only, each with a deadline. */

const TIMEOUT_MS = 10_000;

function unixPeer(socketPath: string, what: string): JsonPeer {
  return {
    socketPath,
    timeoutMs: TIMEOUT_MS,
    // Docker's plugin protocol wants this content type on every request.
    headers: { Accept: 'application/vnd.docker.plugins.v1+json' },
    unreachable: (err) => new FerryError('NODE_UNREACHABLE', `${what} at ${socketPath}: ${err.code ?? ''} ${err.message}`.replace(/\s+/g, ' ')),
    notJson: (status, text) => new FerryError('INTERNAL', `${what} at ${socketPath} answered ${status} with something that is not JSON: ${text.slice(0, 100)}`),
  };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** dockerd's version and the volume drivers it has activated (`docker info`'s Plugins.Volume). */
export async function dockerInfo(socket: string): Promise<{ version?: string; volumeDrivers: string[]; error?: string }> {
  try {
    const info = await sendJson<{ ServerVersion?: string; Plugins?: { Volume?: string[] } }>(unixPeer(socket, 'dockerd'), 'GET', '/info');
    return { version: info.ServerVersion ?? 'unknown', volumeDrivers: info.Plugins?.Volume ?? [] };
  } catch (err) {
    return { volumeDrivers: [], error: message(err) };
  }
}

/** Managed (v2) plugins (`docker plugin ls`); none when dockerd does not answer. */
export async function managedPlugins(socket: string): Promise<{ name: string; enabled: boolean }[]> {
  try {
    const list = await sendJson<{ Name: string; Enabled: boolean }[]>(unixPeer(socket, 'dockerd'), 'GET', '/plugins');
    return Array.isArray(list) ? list.map((p) => ({ name: p.Name, enabled: p.Enabled })) : [];
  } catch {
    return [];
  }
}

/** Whether the plugin socket is there and what it answers to /Plugin.Activate, as dockerd asks. */
export async function pluginActivate(path: string): Promise<{ exists: boolean; implements?: string[]; error?: string }> {
  if (!existsSync(path)) return { exists: false };
  try {
    const r = await sendJson<{ Implements?: string[] }>(unixPeer(path, 'the plugin socket'), 'POST', '/Plugin.Activate', {});
    return { exists: true, implements: Array.isArray(r.Implements) ? r.Implements : [] };
  } catch (err) {
    return { exists: true, error: message(err) };
  }
}

/** The checks of dockerd and of ferry's place in it: dockerd answers, the plugin is activated, its socket answers. */
export async function dockerChecks(dockerSocket: string, pluginSocket: string): Promise<DoctorCheck[]> {
  // dockerd names a legacy plugin after its socket file: ferry.sock is the driver "ferry".
  const driver = basename(pluginSocket, '.sock');
  const [info, socket] = await Promise.all([dockerInfo(dockerSocket), pluginActivate(pluginSocket)]);
  const checks = [dockerdCheck(dockerSocket, info)];
  if (info.version) checks.push(pluginActivatedCheck({ driver, volumeDrivers: info.volumeDrivers, managed: await managedPlugins(dockerSocket) }));
  checks.push(pluginSocketCheck(pluginSocket, socket));
  return checks;
}
