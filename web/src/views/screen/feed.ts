// The area's feed: read once, then followed over its Server-Sent Events
// stream (GET /public/screens/{area_id}/stream). The browser's EventSource
// reconnects by itself after the server's `retry:`; on every reconnect the
// feed is read again. A stream the browser gave up on (a 429 or 503 answer
// closes it for good) is opened again after a while.
import { useEffect, useState } from "preact/hooks";
import { anonymous, must } from "../../api";
import type { Problem } from "../../api";
import { getScreenFeed } from "../../gen/sdk.gen";
import type { ScreenFeed } from "../../gen/types.gen";

const REOPEN_MS = 30_000;

export type StreamStatus = "connecting" | "live" | "reconnecting";

export interface FeedState {
  feed: ScreenFeed | null;
  problem: Problem | null;
  status: StreamStatus;
  /** When the feed shown arrived (ms since the epoch). */
  at: number;
}

export function useScreenFeed(areaId: string): FeedState {
  const [state, setState] = useState<FeedState>({ feed: null, problem: null, status: "connecting", at: 0 });

  useEffect(() => {
    let stopped = false;
    let source: EventSource | null = null;
    let reopen: number | undefined;
    let opened = false;

    const show = (feed: ScreenFeed) => {
      if (!stopped) setState((s) => ({ ...s, feed, problem: null, at: Date.now() }));
    };
    const status = (next: StreamStatus) => {
      if (!stopped) setState((s) => (s.status === next ? s : { ...s, status: next }));
    };
    const read = async () => {
      try {
        show(await must(getScreenFeed({ client: anonymous, path: { area_id: areaId } })));
      } catch (problem) {
        if (!stopped) setState((s) => ({ ...s, problem: problem as Problem }));
      }
    };

    const open = () => {
      source = new EventSource(`/api/v1/public/screens/${encodeURIComponent(areaId)}/stream`);
      source.addEventListener("open", () => {
        status("live");
        if (opened) void read(); // back after a break: what changed meanwhile
        opened = true;
      });
      source.addEventListener("feed", (event) => {
        try {
          show(JSON.parse((event as MessageEvent<string>).data) as ScreenFeed);
        } catch {
          /* a torn message: the next one will do */
        }
      });
      source.addEventListener("error", () => {
        status("reconnecting");
        if (source?.readyState === EventSource.CLOSED) {
          source = null;
          reopen = window.setTimeout(open, REOPEN_MS);
        }
      });
    };

    void read();
    open();
    return () => {
      stopped = true;
      source?.close();
      window.clearTimeout(reopen);
    };
  }, [areaId]);

  return state;
}
