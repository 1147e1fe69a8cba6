import { FerryError, toFerryError, type ErrorCode, type ErrorKind } from '../errors';

/**
 * The one translation between FerryError and HTTP, in both directions: servers (control's cluster API,
 * the local API) answer an error with its kind's status and an `{error}` body; clients (the CLI, an
 * agent talking to control) turn that body back into the same FerryError.
 */
const HTTP_STATUS: Record<ErrorKind, number> = {
  not_found: 404,
  invalid: 400,
  conflict: 409,
  unavailable: 503,
  unauthorized: 401,
  internal: 500,
};

/** How an error travels in an answer's body. */
export interface ErrorBody {
  error: { code: ErrorCode; kind: ErrorKind; message: string };
}

/** The status and body that answer `err`. */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  const e = toFerryError(err);
  return { status: HTTP_STATUS[e.kind], body: { error: { code: e.code, kind: e.kind, message: e.message } } };
}

/** Answers `err` on a response (express's fits; typed by shape so that this module loads no server). */
export function sendError(res: { status(code: number): { json(body: unknown): unknown } }, err: unknown): void {
  const { status, body } = errorResponse(err);
  res.status(status).json(body);
}

/** The FerryError an answer's body carries, else undefined. */
export function errorFromBody(body: unknown): FerryError | undefined {
  const e = (body as Partial<ErrorBody> | null)?.error;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string') return undefined;
  return new FerryError(e.code, String(e.message));
}
