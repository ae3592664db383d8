import {
  type CapturedResponse,
  type DeadLetterVerdict,
  type FinalVerdict,
  type RetryVerdict,
  retry,
  type Verdict,
} from './outcome';

/**
 * Follow-up requests for a batch the vendor refused as a whole because of some of its rows. Meta, TikTok,
 * LinkedIn, Pinterest and Snap process none of a batch request when one event in it is invalid (Meta: "we return an error for the
 * entire request and process no events"); without this, one bad event would take every good one in its batch
 * to the DLQ, or cost each of them a delivery attempt. Here:
 *
 * - Rows the vendor names get its verdict; the others (`resend`) go again at once in one request without them.
 * - When it names none (`bisect`), the refused group is halved and the first half sent. If the vendor takes
 *   it, the fault is in the second half, which is halved in turn without being sent; if not, that half is
 *   halved and the second half waits for the next plain request (one request for all such halves). A row
 *   refused alone, or the one row left of a group whose other rows were taken, gets the vendor's verdict.
 *   One bad row among n costs at most ⌈log2 n⌉ + 1 follow-ups.
 *
 * Follow-ups are bounded by `followUpBudget(n)` per batch. Rows the budget leaves unjudged go to the worker's
 * next attempt (`retry` `batch_partially_rejected`), where the rows already isolated are no longer in the
 * batch. One exception: when the vendor took nothing at all from the batch, an unnamed refusal was most likely
 * about the request itself (a setting every row shares), so the rows it refused get its verdict, as before,
 * instead of spending every attempt on it. A follow-up answered with `retry` for every row (throttled, down,
 * shutdown) ends the splitting: the rows still unjudged get that retry.
 */

/** What one request said about each of its rows, in order. */
export interface Judgement {
  readonly list: readonly Verdict[];
  /** The vendor's scrubbed answer, when any row was not delivered. */
  readonly lastResponse: CapturedResponse | undefined;
}

/** A row's final verdict and the answer that decided it (none for a delivered row). */
export interface Settled {
  readonly verdict: FinalVerdict;
  readonly lastResponse: CapturedResponse | undefined;
}

/** Sends one request holding the given rows (positions in the batch, ascending) and judges it. */
export type SendRows = (rows: readonly number[]) => Promise<Judgement>;

/** Follow-up requests allowed for a batch of `count` rows, on top of the first: 2·⌈log2 n⌉. */
export function followUpBudget(count: number): number {
  return count < 2 ? 0 : 2 * Math.ceil(Math.log2(count));
}

/** Rows refused together for a row the vendor did not name: at least one of them is at fault. */
interface RefusedGroup {
  readonly rows: readonly number[];
  readonly verdict: DeadLetterVerdict;
  readonly lastResponse: CapturedResponse | undefined;
}

const NOT_ISOLATED = retry(
  'batch_partially_rejected',
  undefined,
  'the vendor refused the batch for other events, which the follow-up requests did not isolate',
);

/** One verdict per row of a batch of `count` rows, sending the first request and any follow-ups. */
export async function settleBatch(count: number, send: SendRows): Promise<Settled[]> {
  const settled: (Settled | undefined)[] = new Array(count);
  /** Refused groups still to split: a stack, so one group is followed down before the next. */
  const refused: RefusedGroup[] = [];
  /** Rows for the next plain request, with the unnamed refusal they were last part of (if any). */
  const pending = new Map<number, DeadLetterVerdict | undefined>();
  /** Per row, the last answer that did not deliver it. */
  const lastAnswer: (CapturedResponse | undefined)[] = new Array(count);
  let followUps = followUpBudget(count);
  let requests = 0;
  let anyDelivered = false;
  let stop: RetryVerdict | undefined;

  for (let row = 0; row < count; row += 1) pending.set(row, undefined);

  const judge = (rows: readonly number[], judgement: Judgement): void => {
    const blamed: number[] = [];
    let refusal: DeadLetterVerdict | undefined;
    rows.forEach((row, i) => {
      const verdict = judgement.list[i];
      if (verdict === undefined) return;
      switch (verdict.kind) {
        case 'resend':
          pending.set(row, undefined);
          lastAnswer[row] = judgement.lastResponse;
          return;
        case 'bisect':
          blamed.push(row);
          refusal = verdict.verdict;
          lastAnswer[row] = judgement.lastResponse;
          return;
        case 'delivered':
          anyDelivered = true;
          settled[row] = { verdict, lastResponse: undefined };
          return;
        default:
          settled[row] = { verdict, lastResponse: judgement.lastResponse };
      }
    });
    if (refusal !== undefined && blamed.length > 0) {
      refused.push({ rows: blamed, verdict: refusal, lastResponse: judgement.lastResponse });
    }
  };

  while (stop === undefined) {
    const group = refused.pop();
    const [only] = group?.rows ?? [];
    if (group !== undefined && group.rows.length === 1 && only !== undefined) {
      settled[only] = { verdict: group.verdict, lastResponse: group.lastResponse };
      continue;
    }
    let rows: number[];
    let rest: number[] = [];
    if (group !== undefined) {
      const half = Math.ceil(group.rows.length / 2);
      rows = group.rows.slice(0, half);
      rest = group.rows.slice(half);
    } else if (pending.size > 0) {
      rows = [...pending.keys()].sort((a, b) => a - b);
    } else {
      break;
    }
    if (requests > 0) {
      if (followUps === 0) {
        if (group !== undefined) refused.push(group);
        break;
      }
      followUps -= 1;
    }
    if (group === undefined) pending.clear();
    requests += 1;
    const judgement = await send(rows);
    judge(rows, judgement);
    if (group !== undefined) {
      if (rows.every((row) => settled[row]?.verdict.kind === 'delivered')) {
        // The vendor took the first half, so the row at fault is in the second: split it without sending it.
        refused.push({ ...group, rows: rest });
      } else {
        for (const row of rest) pending.set(row, group.verdict);
      }
    }
    if (requests > 1 && judgement.list.length > 0) {
      const retries = judgement.list.filter((v): v is RetryVerdict => v.kind === 'retry');
      if (retries.length === judgement.list.length) stop = retries[0];
    }
  }

  const leftover = (row: number, refusal: DeadLetterVerdict | undefined): Settled => {
    const lastResponse = lastAnswer[row];
    if (stop !== undefined) return { verdict: stop, lastResponse };
    if (refusal !== undefined && !anyDelivered) return { verdict: refusal, lastResponse };
    return { verdict: NOT_ISOLATED, lastResponse };
  };
  for (const group of refused) {
    for (const row of group.rows) {
      settled[row] =
        group.rows.length === 1
          ? { verdict: group.verdict, lastResponse: group.lastResponse }
          : leftover(row, group.verdict);
    }
  }
  for (const [row, refusal] of pending) settled[row] = leftover(row, refusal);
  return Array.from(
    { length: count },
    (_, row): Settled => settled[row] ?? { verdict: NOT_ISOLATED, lastResponse: lastAnswer[row] },
  );
}
