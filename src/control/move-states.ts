import { FerryError } from '../errors';
import type { MoveState } from '../wire/records';

export type { MoveState };

/**
 * The one state machine of a move (DESIGN: "A move, step by step"), read as a table like Flocker's
 * DATASET_TRANSITIONS: every legal change of a move's state is one row, with the reason for it. Every
 * write of a move's state goes through `nextMoveState`; the active states, and the SQL that selects
 * them, derive from the table. Pure: no I/O.
 */

/** What each state means; `refusesMounts` is true while no host may take a new lease on the volume. */
export const MOVE_STATES: Readonly<Record<MoveState, { meaning: string; refusesMounts: boolean }>> = {
  precopy: { meaning: 'snapshots stream to the target while the volume may be in use on the source', refusesMounts: false },
  releasing: { meaning: "waiting for the source's leases to drop to zero", refusesMounts: false },
  final: { meaning: 'the source refuses new mounts; the last increment is sent and verified', refusesMounts: true },
  switched: { meaning: 'the target is primary (the atomic point); it is making its copy live', refusesMounts: true },
  done: { meaning: 'ended: the volume lives on the target', refusesMounts: false },
  failed: { meaning: 'ended: the source stayed primary and intact; the reason is recorded', refusesMounts: false },
};
export const ALL_MOVE_STATES = Object.keys(MOVE_STATES) as MoveState[];

/** What happens to a move; each event moves it along one row of the table. */
export const MOVE_EVENTS = ['precopied', 'released', 'switch', 'mounted', 'fail', 'host-down'] as const;
export type MoveEvent = (typeof MOVE_EVENTS)[number];

/** One legal transition and why it exists. */
export interface MoveTransition {
  from: MoveState;
  event: MoveEvent;
  to: MoveState;
  reason: string;
}

const BEFORE_SWITCH = ['precopy', 'releasing', 'final'] as const;

/** The legal transitions. Anything not here is refused with MOVE_CONFLICT. */
export const MOVE_TRANSITIONS: readonly MoveTransition[] = [
  { from: 'precopy', event: 'precopied', to: 'releasing', reason: 'the pre-copy rounds left a small delta: wait for the source to release the volume' },
  { from: 'releasing', event: 'released', to: 'final', reason: 'the source holds no lease: take and send the last increment' },
  { from: 'final', event: 'switch', to: 'switched', reason: 'the last increment arrived verified: primary := target, generation + 1, in one transaction' },
  { from: 'switched', event: 'mounted', to: 'done', reason: 'the target made its copy live: the move is over' },
  ...BEFORE_SWITCH.map(
    (from): MoveTransition => ({ from, event: 'fail', to: 'failed', reason: 'an error before the switch: the source stays primary and intact' }),
  ),
  ...BEFORE_SWITCH.map(
    (from): MoveTransition => ({
      from,
      event: 'host-down',
      to: 'failed',
      reason: 'a move needs both hosts until the switch; a target cut off cannot record its own failure, so control does',
    }),
  ),
  // No row leaves `switched` but `mounted`: after the switch the target is primary, and it finishes
  // the move whenever it is back. No row leaves `done` or `failed`: they are ended.
];

const byKey = new Map(MOVE_TRANSITIONS.map((t) => [`${t.from} ${t.event}`, t]));

/** True when `event` is legal for a move in state `from`. */
export function canMove(from: MoveState, event: MoveEvent): boolean {
  return byKey.has(`${from} ${event}`);
}

/**
 * The state after `event` in state `from`; MOVE_CONFLICT naming both when the table has no such row
 * (e.g. a move in `final` asked to go back to `releasing`, or anything on an ended move).
 */
export function nextMoveState(from: MoveState, event: MoveEvent, move?: { id: number; volume: string }): MoveState {
  const t = byKey.get(`${from} ${event}`);
  if (t) return t.to;
  const which = move ? `move ${move.id} of ${move.volume}` : 'a move';
  const legal = MOVE_TRANSITIONS.filter((x) => x.from === from).map((x) => x.event);
  const next = legal.length ? `it accepts only ${legal.join(', ')}` : 'it has ended; start a new move if the volume must still go';
  throw new FerryError('MOVE_CONFLICT', `${which} is ${from}: event ${event} is not allowed there (${next})`, {
    details: { state: from, event },
  });
}

/** States a move is under way in: those the table leads out of. */
export const ACTIVE_MOVE_STATES: readonly MoveState[] = ALL_MOVE_STATES.filter((s) => MOVE_TRANSITIONS.some((t) => t.from === s));
/** The states that are not ended (the table test checks this type against ACTIVE_MOVE_STATES). */
export type ActiveMoveState = Exclude<MoveState, 'done' | 'failed'>;

/** True while a move in state `s` is under way. */
export function isActiveMove(s: MoveState): s is ActiveMoveState {
  return ACTIVE_MOVE_STATES.includes(s);
}

/** True while a move reports progress and may still fail: before the switch. */
export function acceptsProgress(s: MoveState): boolean {
  return canMove(s, 'fail');
}

/** The SQL list of the active states, for `state IN ${ACTIVE_MOVE_STATES_SQL}`. */
export const ACTIVE_MOVE_STATES_SQL = `(${ACTIVE_MOVE_STATES.map((s) => `'${s}'`).join(', ')})`;

/** The state an agent may report through `updateMove` (the wire shape), as the event it means. */
export function eventOfReportedState(state: 'releasing' | 'final'): MoveEvent {
  return state === 'releasing' ? 'precopied' : 'released';
}
