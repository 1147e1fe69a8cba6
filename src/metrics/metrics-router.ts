import express, { type Request, type Response } from 'express';

/** Anything that answers a scrape with Prometheus' text format. */
export interface MetricsSource {
  readonly contentType: string;
  scrape(): Promise<string>;
}

/**
 * GET /metrics: every source's series in Prometheus' text format, one after another (their names
 * never overlap). A failed scrape answers 500 with the reason, which Prometheus shows as the target's error.
 */
export function metricsRouter(sources: readonly MetricsSource[]): express.Router {
  return express.Router().get('/', (_req: Request, res: Response) => {
    Promise.all(sources.map((s) => s.scrape())).then(
      (texts) => void res.type(sources[0]?.contentType ?? 'text/plain').send(texts.join('')),
      (err: unknown) => void res.status(500).type('text/plain').send(`scrape failed: ${(err as Error).message}\n`),
    );
  });
}
