import type { ControlFacts } from '../metrics/control-metrics';
import type { ControlClient } from '../wire/control-client';
import type { Db } from './db';
import { countEventsByKind } from './event-repo';
import { activeMoves, countMovesByState } from './move-repo';

/** What control's metrics read at each scrape: its views, and counts straight from its tables. */
export function controlFacts(control: ControlClient, db: Db): ControlFacts {
  return {
    volumes: () => control.listVolumes(),
    nodes: () => control.listNodes(),
    movesByState: () => countMovesByState(db),
    activeMoves: () => activeMoves(db),
    eventsByKind: () => countEventsByKind(db),
  };
}
