import type { Config } from '../config/config';
import { apiCheck } from '../doctor/checks';
import { dockerChecks } from '../doctor/docker-probes';
import { backendToolChecks } from '../doctor/host-probes';
import { toFerryError } from '../errors';
import type { DoctorCheck, DoctorReport } from '../wire/records';
import { apiCall } from './client';

/**
 * `ferry doctor`: the running agent's checks (over the local API) when it answers, else what can be
 * checked without it (tools for the default backend, dockerd, the plugin socket), from the config
 * the flags give. The report is ok only when every check passed.
 */
export async function runDoctor(apiSocket: string, config: Config): Promise<DoctorReport> {
  try {
    const agent = await apiCall<DoctorReport>(apiSocket, 'GET', '/v1/doctor');
    const checks = [apiCheck(apiSocket, { ok: true }), ...agent.checks];
    return { node: agent.node, ok: checks.every((c) => c.ok), checks };
  } catch (err) {
    const checks: DoctorCheck[] = [
      apiCheck(apiSocket, { ok: false, error: toFerryError(err).message }),
      ...backendToolChecks(new Set([config.defaults.backend, ...(config.defaults.fs ? [`${config.defaults.backend}:fs=${config.defaults.fs}`] : [])])),
      ...(await dockerChecks(config.dockerSocket, config.pluginSocket)),
    ];
    return { node: null, ok: false, checks };
  }
}

/** The report as people read it: one line per check, and under each failure its fix. */
export function doctorText(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.check.length));
  const lines: string[] = [];
  for (const c of r.checks) {
    lines.push(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.check.padEnd(width)}  ${c.ok ? (c.detail ?? '') : c.problem}`.trimEnd());
    if (!c.ok && c.fix) lines.push(`${' '.repeat(width + 8)}fix: ${c.fix}`);
  }
  const failed = r.checks.filter((c) => !c.ok).length;
  lines.push(failed ? `${failed} of ${r.checks.length} checks failed${r.node ? ` on ${r.node}` : ''}` : `all ${r.checks.length} checks passed${r.node ? ` on ${r.node}` : ''}`);
  return lines.join('\n');
}
