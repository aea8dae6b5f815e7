import { compareCursors, formatCursor, parseCursor, type StreamPosition } from '@iotsupport/contracts/stream-cursor';

/** One log line as the client hands it to the page, in stream order. */
export interface LiveLine {
  /** The stored document (`_source`). */
  doc: Record<string, unknown>;
  /** Its Elasticsearch `_id`, when the event carried ids. */
  id?: string;
  /** Its position in the device's stream, when the event carried a cursor. */
  epoch?: string;
  offset?: number;
}

/** What one device's stream told the page, in the order it happened. */
export type DeviceStreamNotice =
  | { kind: 'lines'; lines: LiveLine[] }
  /** Offsets skipped: lines the server could not deliver (a `dropped` marker, or a trimmed window). */
  | { kind: 'gap'; after: string; missing: number }
  /** Another epoch: the history between `from` and `to` is gone (Redis lost it). */
  | { kind: 'reset'; from: string; to: string }
  /** A resume the window could not serve: delivery went on at `cursor`; lines after `since` are missing. */
  | { kind: 'unrecovered'; since: string; cursor: string };

interface HeldLine {
  position: StreamPosition;
  /** Exact cursor text: only the last line of an event has one (its event's `cursor`). */
  cursor: string | undefined;
  line: LiveLine;
}

/** Bounded memory of line ids, for events that carry ids but no cursor. */
const REMEMBERED_IDS = 10_000;

/**
 * The client-side state of one device's stream (keyed by entity id): the position of the last line
 * shown, repeats dropped by offset (or by id when an event has no cursor), and the hold-back that
 * makes a resume gap-free whatever order the server's replay and live lines arrive in.
 *
 * An event's lines are consecutive offsets ending at the event's `cursor`; line i of n has offset
 * `cursor.offset − (n − 1 − i)`. Only the last line's `ms` is known, so only event-final cursors
 * are ever used to resume (`resumeCursor`).
 */
export class DeviceStream {
  /** Position of the last line shown (or the subscribe answer's cursor before any line). */
  private last: StreamPosition | undefined;
  /** Exact cursor to resume from: at or before `last`, never after it. */
  private resumeFrom: string | undefined;
  /** While set, a line past a gap is held (the replay fills the gap) instead of reported as a gap. */
  private resumeTarget: StreamPosition | 'answer-pending' | undefined;
  private held: HeldLine[] = [];
  private readonly seenIds = new Set<string>();
  duplicates = 0;

  constructor(private readonly notify: (notice: DeviceStreamNotice) => void) {}

  /** The cursor to pass as `since` after a reconnect (undefined before any line or answer). */
  get resumeCursor(): string | undefined {
    return this.resumeFrom;
  }

  get resuming(): boolean {
    return this.resumeTarget !== undefined;
  }

  /** Starts from a cursor the page kept (e.g. across a reload), as if its line had been shown. */
  seed(cursor: string): void {
    const position = parseCursor(cursor);
    if (position && !this.last) this.moveTo(position, cursor);
  }

  /** A resubscribe was sent: hold lines past a gap until its answer (and replay) arrive. */
  beginResume(): void {
    this.resumeTarget = 'answer-pending';
  }

  /** A subscribe answer: `cursor` is the device's position then, `recovered` set when `since` was sent. */
  answer(cursor: string, since: string | undefined, recovered: boolean | undefined): void {
    const position = parseCursor(cursor);
    if (!position) return this.finishResume();
    // The answer settles which history is current: held lines of any other are stale.
    this.held = this.held.filter((h) => h.position.epoch === position.epoch);
    if (since !== undefined && recovered === false) {
      this.notify({ kind: 'unrecovered', since, cursor });
      const sincePosition = parseCursor(since);
      if (sincePosition && sincePosition.epoch !== position.epoch) this.notify({ kind: 'reset', from: since, to: cursor });
      const relation = this.last ? compareCursors(this.last, position) : 'reset';
      if (relation === 'before' || relation === 'reset') this.moveTo(position, cursor);
      return this.finishResume();
    }
    if (!this.last) this.moveTo(position, cursor);
    else if (this.last.epoch !== position.epoch) {
      // A first subscribe whose answer reports another epoch than lines already shown: history lost meanwhile.
      this.notify({ kind: 'reset', from: this.resumeFrom ?? formatCursor(this.last), to: cursor });
      this.moveTo(position, cursor);
    }
    if (since !== undefined && recovered === true && compareCursors(this.last!, position) === 'before') {
      this.resumeTarget = position; // the replay brings every line up to `cursor`
      this.drain();
    } else this.finishResume();
  }

  /** Gives up waiting for a replay (it never came): what is held is shown, its gaps reported. */
  finishResume(): void {
    this.resumeTarget = undefined;
    this.drain();
  }

  /** One `device-logs` event's lines. */
  receive(docs: Record<string, unknown>[], ids: string[] | undefined, cursor: string | undefined): void {
    const end = cursor === undefined ? undefined : parseCursor(cursor);
    if (!end) return this.receiveUnpositioned(docs, ids);
    const incoming: HeldLine[] = docs.map((doc, i) => {
      const offset = end.offset - (docs.length - 1 - i);
      const id = ids?.[i];
      return {
        position: { epoch: end.epoch, ms: end.ms, offset },
        cursor: i === docs.length - 1 ? cursor : undefined,
        line: id === undefined ? { doc, epoch: end.epoch, offset } : { doc, id, epoch: end.epoch, offset },
      };
    });
    const shown: LiveLine[] = [];
    for (const item of incoming) this.offer(item, shown);
    this.flush(shown);
  }

  private receiveUnpositioned(docs: Record<string, unknown>[], ids: string[] | undefined): void {
    const lines: LiveLine[] = [];
    docs.forEach((doc, i) => {
      const id = ids?.[i];
      if (id === undefined) return void lines.push({ doc });
      if (this.seenIds.has(id)) return void (this.duplicates += 1);
      this.seenIds.add(id);
      if (this.seenIds.size > REMEMBERED_IDS) this.seenIds.delete(this.seenIds.values().next().value!);
      lines.push({ doc, id });
    });
    this.flush(lines);
  }

  private offer(item: HeldLine, shown: LiveLine[]): void {
    if (!this.last) return this.show(item, shown);
    const relation = compareCursors(this.last, item.position);
    if (relation === 'same' || relation === 'after') {
      this.duplicates += 1;
      return;
    }
    const contiguous = relation === 'before' && item.position.offset === this.last.offset + 1;
    if (contiguous) {
      this.show(item, shown);
      return this.drainInto(shown);
    }
    if (this.resuming) return void this.held.push(item);
    this.flush(shown);
    if (relation === 'reset') this.notify({ kind: 'reset', from: this.resumeFrom ?? formatCursor(this.last), to: item.cursor ?? formatCursor(item.position) });
    else this.notify({ kind: 'gap', after: this.resumeFrom ?? formatCursor(this.last), missing: item.position.offset - this.last.offset - 1 });
    this.show(item, shown);
    this.drainInto(shown);
  }

  private show(item: HeldLine, shown: LiveLine[]): void {
    this.last = item.position;
    if (item.cursor !== undefined) this.resumeFrom = item.cursor;
    shown.push(item.line);
    const target = this.resumeTarget;
    if (target !== undefined && target !== 'answer-pending' && compareCursors(item.position, target) !== 'before') this.resumeTarget = undefined;
  }

  private moveTo(position: StreamPosition, cursor: string): void {
    this.last = position;
    this.resumeFrom = cursor;
  }

  /** Shows held lines that became next in line (and, when no longer resuming, the rest past their gaps). */
  private drain(): void {
    const shown: LiveLine[] = [];
    this.drainInto(shown);
    this.flush(shown);
  }

  private drainInto(shown: LiveLine[]): void {
    if (this.held.length === 0) return;
    const held = this.held.sort((a, b) => a.position.offset - b.position.offset);
    this.held = [];
    for (const item of held) {
      // Another epoch's lines wait for the resume to settle which history is current.
      if (this.resuming && this.last && item.position.epoch !== this.last.epoch) this.held.push(item);
      else this.offer(item, shown);
    }
  }

  private flush(shown: LiveLine[]): void {
    if (shown.length === 0) return;
    this.notify({ kind: 'lines', lines: shown.splice(0, shown.length) });
  }
}
