/**
 * group (issue 7 item 2): which of the volumes one cron tick fires for on this host are snapshotted
 * together (pure; the scheduler acts on it). A volume belongs to the Compose project its containers
 * carry (`com.docker.compose.project`); a project with two or more of the tick's volumes is one group,
 * taken at one instant, all or none. Everything else is taken alone.
 */

/** A container as the decision needs it: the named volumes it mounts and its Compose project, if any. */
export interface TickContainer {
  volumes: readonly string[];
  project: string | null;
}

/** What one tick does. */
export interface TickPlan {
  /** One `takeGroup` each (group = project), volumes sorted; groups sorted by project. */
  groups: { project: string; volumes: string[] }[];
  /** One `take` each, sorted. */
  singles: string[];
  /** Volumes taken alone although containers of several projects use them (for the log). */
  ambiguous: { volume: string; projects: string[] }[];
}

/**
 * Splits `volumes` (those one tick fires for: same host, same policy) into groups and singles from
 * the containers dockerd reports. A volume whose containers carry no project, or whose containers
 * carry several projects (which instant would it belong to?), is taken alone; containers without a
 * project next to one with a project do not change that volume's project. A project with a single
 * volume in the tick is a single.
 */
export function scheduleGroups(volumes: readonly string[], containers: readonly TickContainer[]): TickPlan {
  const wanted = new Set(volumes);
  const projectsOf = new Map<string, Set<string>>();
  for (const c of containers) {
    if (c.project === null || c.project === '') continue;
    for (const v of c.volumes) {
      if (!wanted.has(v)) continue;
      const s = projectsOf.get(v) ?? new Set<string>();
      s.add(c.project);
      projectsOf.set(v, s);
    }
  }
  const members = new Map<string, string[]>();
  const singles: string[] = [];
  const ambiguous: TickPlan['ambiguous'] = [];
  for (const v of [...wanted].sort()) {
    const ps = [...(projectsOf.get(v) ?? [])].sort();
    if (ps.length === 1) members.set(ps[0], [...(members.get(ps[0]) ?? []), v]);
    else {
      singles.push(v);
      if (ps.length > 1) ambiguous.push({ volume: v, projects: ps });
    }
  }
  const groups: TickPlan['groups'] = [];
  for (const [project, vs] of [...members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (vs.length >= 2) groups.push({ project, volumes: vs });
    else singles.push(...vs);
  }
  singles.sort();
  return { groups, singles, ambiguous };
}
