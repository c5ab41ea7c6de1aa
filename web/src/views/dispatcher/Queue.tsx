// The escalated queue: calls no team took, waiting on a dispatcher. Each
// can be handed to a team of the area (POST /dispatch/calls/{id}/assign);
// the teams offered are the area's, from the live map, nearest first.
import { useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { assignCall } from "../../gen/sdk.gen";
import type { CallPublic } from "../../gen/types.gen";
import { formatDistance, formatTime, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { useSignal } from "../../state";
import { ErrorLine } from "../../ui";
import { board, CATEGORY, LEVEL, metres, queue, readMap } from "./store";
import type { TeamFeature } from "./store";

const TEXT = {
  title: { zh: "待派单的呼叫（{n}）", en: "Calls waiting for a dispatcher ({n})" },
  empty: { zh: "没有待派单的呼叫。", en: "No call is waiting for a dispatcher." },
  loading: { zh: "加载中…", en: "Loading…" },
  pressed: { zh: "{time} 呼叫", en: "Called at {time}" },
  level: { zh: "已升级到{level}", en: "Escalated to the {level}" },
  grid: { zh: "所在网格：{name}", en: "Grid: {name}" },
  note: { zh: "留言：{note}", en: "Note: {note}" },
  assign: { zh: "派给队伍", en: "Assign to a team" },
  close: { zh: "收起", en: "Close" },
  pick: { zh: "选择附近的队伍", en: "Choose a team nearby" },
  noTeams: { zh: "辖区内没有队伍", en: "No team in the area" },
  team: { zh: "{name}", en: "{name}" },
  teamFacts: { zh: "距离 {distance} · {n} 人在岗", en: "{distance} away · {n} on duty" },
  incomplete: { zh: "人数不足", en: "Incomplete" },
  assigned: { zh: "已派给「{team}」，等待队员接单", en: "Assigned to {team}; waiting for a member to accept" },
} satisfies Record<string, Text>;

const PICK = 8; // nearest teams shown

export default function Queue() {
  useLang();
  const waiting = useSignal(queue);
  const [done, setDone] = useState<string | null>(null);
  if (!waiting) return <p class="card">{tr(TEXT.loading)}</p>;
  return (
    <section class="queue" aria-labelledby="queue-title">
      <h3 id="queue-title">{tr(TEXT.title, { n: waiting.length })}</h3>
      {done && (
        <p class="ok" role="status">
          {done}
        </p>
      )}
      {waiting.length === 0 && <p class="card">{tr(TEXT.empty)}</p>}
      <ul class="queue-list">
        {waiting.map((call) => (
          <QueuedCall key={call.id} call={call} onAssigned={setDone} />
        ))}
      </ul>
    </section>
  );
}

function QueuedCall(props: { call: CallPublic; onAssigned: (message: string) => void }) {
  const { call } = props;
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  const current = useSignal(board);
  const here = [call.location.lng, call.location.lat];
  const teams = (current?.teams ?? [])
    .map((team) => ({ team, distance: metres(here, team.geometry.coordinates) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, PICK);

  const toggle = () => {
    if (!open) void readMap(); // the teams' counts and status, fresh
    setOpen(!open);
    setProblem(null);
  };

  const assign = async (team: TeamFeature) => {
    setBusy(true);
    setProblem(null);
    try {
      await must(assignCall({ client: api, path: { call_id: call.id }, body: { team_id: team.properties.id } }));
      props.onAssigned(tr(TEXT.assigned, { team: team.properties.name }));
      queue.set((queue.get() ?? []).filter((c) => c.id !== call.id));
    } catch (error) {
      setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  };

  return (
    <li class="card queued" data-call-id={call.id}>
      <div class="queued-head">
        <div>
          <h4>{tr(CATEGORY[call.category])}</h4>
          <p>
            {tr(TEXT.pressed, { time: formatTime(call.created_at) })}
            {" · "}
            {tr(TEXT.level, { level: tr(LEVEL[call.escalation_level]) })}
          </p>
          {call.grid && <p>{tr(TEXT.grid, { name: call.grid.name })}</p>}
          {call.note && <p class="note">{tr(TEXT.note, { note: call.note })}</p>}
        </div>
        <button type="button" class={open ? "secondary" : "primary"} aria-expanded={open} onClick={toggle}>
          {open ? tr(TEXT.close) : tr(TEXT.assign)}
        </button>
      </div>
      {open && (
        <fieldset class="team-picker" disabled={busy}>
          <legend>{tr(TEXT.pick)}</legend>
          {teams.length === 0 && <p>{tr(TEXT.noTeams)}</p>}
          <ul>
            {teams.map(({ team, distance }) => (
              <li>
                <button
                  type="button"
                  class="team-choice"
                  data-team-id={team.properties.id}
                  onClick={() => void assign(team)}
                >
                  <strong>{tr(TEXT.team, { name: team.properties.name })}</strong>
                  <span>
                    {tr(TEXT.teamFacts, { distance: formatDistance(distance), n: team.properties.on_duty_count })}
                  </span>
                  {team.properties.status !== "active" && <span class="tag">{tr(TEXT.incomplete)}</span>}
                </button>
              </li>
            ))}
          </ul>
          <ErrorLine problem={problem} />
        </fieldset>
      )}
    </li>
  );
}
