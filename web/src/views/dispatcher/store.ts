// What the dispatcher's view holds while it is open: the live map of its
// area (GET /dispatch/map) and the escalated queue (GET /dispatch/calls),
// both kept current from the live stream (docs/dispatch-platform.md).
// `duty.updated` is not replayed by a resume, so every reconnect re-reads.
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { getDispatchMap, listDispatchCalls } from "../../gen/sdk.gen";
import type { CallPublic, MapArea, MapCall, MapFeature, MapMember, MapTeam } from "../../gen/types.gen";
import type { Text } from "../../i18n";
import { live } from "../../live";
import type { LiveEvent } from "../../live";
import { signal } from "../../state";

export type CallFeature = MapFeature & { properties: MapCall };
export type TeamFeature = MapFeature & { properties: MapTeam };
export type MemberFeature = MapFeature & { properties: MapMember };

export interface Board {
  area: MapArea | null;
  calls: CallFeature[]; // oldest first
  teams: TeamFeature[];
  members: MemberFeature[];
}

interface DutyUpdate {
  member_id: string;
  display_name: string;
  team_ids: string[];
  on_duty: boolean;
  location: { lat: number; lng: number; accuracy_m?: number | null } | null;
  located_at: string | null;
  available: boolean;
}

const CLOSED = new Set(["resolved", "cancelled"]);
const REREAD_MS = 60_000; // team counts change with duty and rosters

export const board = signal<Board | null>(null);
export const queue = signal<CallPublic[] | null>(null);
export const problem = signal<Problem | null>(null);

function point(lat: number, lng: number): MapFeature["geometry"] {
  return { type: "Point", coordinates: [lng, lat] } as MapFeature["geometry"];
}

export async function readMap(): Promise<void> {
  try {
    const collection = await must(getDispatchMap({ client: api }));
    const kind = <K extends string>(k: K) => collection.features.filter((f) => f.properties.kind === k);
    board.set({
      area: collection.area,
      calls: kind("call") as CallFeature[],
      teams: kind("team") as TeamFeature[],
      members: kind("member") as MemberFeature[],
    });
  } catch (error) {
    problem.set(error as Problem);
  }
}

export async function readQueue(): Promise<void> {
  try {
    const list = await must(listDispatchCalls({ client: api, query: { status: "escalated", limit: 100 } }));
    queue.set(list.data);
  } catch (error) {
    problem.set(error as Problem);
  }
}

function onCall(event: LiveEvent<CallPublic>): void {
  const call = event.data;
  const current = board.get();
  if (current) {
    const others = current.calls.filter((f) => f.properties.id !== call.id);
    let calls = others;
    if (!CLOSED.has(call.status)) {
      const feature: CallFeature = {
        type: "Feature",
        id: call.id,
        geometry: point(call.location.lat, call.location.lng),
        properties: {
          kind: "call",
          id: call.id,
          status: call.status,
          category: call.category,
          escalation_level: call.escalation_level,
          disputed: call.disputed,
          accuracy_m: call.location.accuracy_m ?? null,
          grid_id: call.grid?.id ?? "",
          team_id: call.team?.id ?? null,
          responder_id: call.responder?.id ?? null,
          created_at: call.created_at,
          updated_at: call.updated_at,
        },
      };
      calls = [...others, feature].sort((a, b) => a.properties.created_at.localeCompare(b.properties.created_at));
    }
    board.set({ ...current, calls });
  }
  const waiting = queue.get();
  if (waiting) {
    const others = waiting.filter((c) => c.id !== call.id);
    queue.set(call.status === "escalated" ? [call, ...others] : others);
  }
}

function onDuty(event: LiveEvent<DutyUpdate>): void {
  const current = board.get();
  if (!current) return;
  const duty = event.data;
  const members = current.members.filter((f) => f.properties.id !== duty.member_id);
  if (duty.on_duty && duty.location) {
    members.push({
      type: "Feature",
      id: duty.member_id,
      geometry: point(duty.location.lat, duty.location.lng),
      properties: {
        kind: "member",
        id: duty.member_id,
        display_name: duty.display_name,
        team_ids: duty.team_ids,
        located_at: duty.located_at ?? event.at,
        accuracy_m: duty.location.accuracy_m ?? null,
        available: duty.available,
      },
    });
  }
  board.set({ ...current, members });
}

let users = 0;
let stopping: (() => void) | null = null;

/** Start following the area (once however many parts of the view ask); returns the stop. */
export function follow(): () => void {
  if (users++ === 0) {
    void readMap();
    void readQueue();
    const reread = () => {
      void readMap();
      void readQueue();
    };
    const offs = [
      live.on("call.updated", onCall),
      live.on("duty.updated", onDuty),
      live.onReconnect(reread),
    ];
    const timer = window.setInterval(() => void readMap(), REREAD_MS);
    stopping = () => {
      for (const off of offs) off();
      window.clearInterval(timer);
      board.set(null);
      queue.set(null);
      problem.set(null);
    };
  }
  return () => {
    if (--users === 0) stopping?.();
  };
}

/** Metres between two [lng, lat] points (haversine; enough to rank teams). */
export function metres(a: number[], b: number[]): number {
  const rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad;
  const dLng = (b[0] - a[0]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}

// Words for the API's enums, shared by the parts of this view.
export const STATUS: Record<string, Text> = {
  searching: { zh: "正在找队伍", en: "Searching" },
  offered: { zh: "等待接单", en: "Offered" },
  accepted: { zh: "已接单", en: "Accepted" },
  en_route: { zh: "正在赶来", en: "On the way" },
  on_site: { zh: "已到场", en: "On site" },
  resolved: { zh: "已解决", en: "Resolved" },
  cancelled: { zh: "已取消", en: "Cancelled" },
  escalated: { zh: "待调度派单", en: "Needs a dispatcher" },
};

export { CATEGORY } from "../../names";

export const LEVEL: Record<string, Text> = {
  grid: { zh: "网格", en: "grid" },
  community: { zh: "社区", en: "community" },
  street: { zh: "街道", en: "street" },
};
