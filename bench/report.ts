/** Markdown tables for the figures, ready to paste into the README. */

/** One figure: what ferry measured, the aim beside it, and what a user would otherwise do. */
export interface Row {
  /** What is measured, with how many samples. */
  figure: string;
  ferry: string;
  /** The aim, or '—'. */
  aim: string;
  /** Whether the figure is within its aim; undefined where there is no aim. Printed, never asserted. */
  met?: boolean;
  otherwise: string;
}

/** Rows under one heading (one table per group). */
export interface RowGroup {
  title: string;
  /** A line under the heading: how the figures were taken. */
  note?: string;
  rows: Row[];
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A markdown table from a header and rows of cells. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.map(cell).join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}

function metText(met: boolean | undefined): string {
  if (met === undefined) return '';
  return met ? 'yes' : '**no**';
}

export function renderGroups(groups: readonly RowGroup[]): string {
  return groups
    .map((g) => {
      const head = [`#### ${g.title}`, ...(g.note ? ['', g.note] : []), ''];
      const table = markdownTable(
        ['Figure', 'ferry', 'Aim', 'Within aim', 'What a user would otherwise do'],
        g.rows.map((r) => [r.figure, r.ferry, r.aim, metText(r.met), r.otherwise]),
      );
      return [...head, table].join('\n');
    })
    .join('\n\n');
}
