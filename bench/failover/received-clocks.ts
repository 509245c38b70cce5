/**
 * What a lean client holds of each Yjs client's edits, read from update metadata
 * (`Y.parseUpdateMeta`) without applying anything. As in a `Y.Doc`, only the run
 * that starts at clock 0 counts: a range that arrives ahead of a gap waits until
 * the gap fills, as Yjs keeps such structs pending, and the state vector sent in a
 * SyncStep1 asks for the gap again. (An owner change can deliver a client's later
 * edit before an earlier one: the earlier one reaches the new owner through a
 * relay's resync.) Taking the highest clock seen instead would claim the gap, and
 * the server's SyncStep2 would then rightly leave it out.
 */
export class ReceivedClocks {
  /** Per Yjs client: the end of the run from 0, and ranges received beyond a gap. */
  private readonly runs = new Map<number, { end: number; ahead: Array<[number, number]> }>();

  /** Records that clocks [from, to) of `client` arrived. */
  add(client: number, from: number, to: number): void {
    let run = this.runs.get(client);
    if (!run) this.runs.set(client, (run = { end: 0, ahead: [] }));
    if (from > run.end) {
      run.ahead.push([from, to]);
      return;
    }
    run.end = Math.max(run.end, to);
    // Ranges that waited for this one join the run.
    let joined = true;
    while (joined && run.ahead.length > 0) {
      joined = false;
      run.ahead = run.ahead.filter(([start, end]) => {
        if (start > run.end) return true;
        run.end = Math.max(run.end, end);
        joined = true;
        return false;
      });
    }
  }

  /** The state vector: per Yjs client, the end of its run from clock 0. */
  vector(): Map<number, number> {
    const vector = new Map<number, number>();
    for (const [client, run] of this.runs) if (run.end > 0) vector.set(client, run.end);
    return vector;
  }
}
