// "See and find" the party members: the teams near the resident with their
// service content, and, on asking, a team's members and who is on duty.
import { useEffect, useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { getTeam, listNearbyTeams } from "../../gen/sdk.gen";
import type { MemberRole, NearbyTeam, Point, TeamProfile } from "../../gen/types.gen";
import { formatDistance, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { ErrorLine } from "../../ui";

const TEXT = {
  title: { zh: "附近的党员服务队", en: "Party member teams near you" },
  none: { zh: "附近暂时没有服务队", en: "No team near you for now" },
  onDuty: { zh: "{n} 人在岗", en: "{n} on duty" },
  away: { zh: "{d}", en: "{d} away" },
  noContent: { zh: "（未写服务内容）", en: "(no service content given)" },
  members: { zh: "看看队员", en: "See the members" },
  hide: { zh: "收起", en: "Hide" },
  onDutyNow: { zh: "在岗", en: "on duty" },
  fullTime: { zh: "专职网格党员", en: "full-time grid party member" },
  partTime: { zh: "兼职队员", en: "part-time member" },
} satisfies Record<string, Text>;

const ROLES: Record<MemberRole, Text> = {
  liaison: { zh: "联络员", en: "liaison" },
  server: { zh: "服务员", en: "server" },
  mediator: { zh: "调解员", en: "mediator" },
  governance_assistant: { zh: "协助治理员", en: "governance assistant" },
  publicity_supervisor: { zh: "宣传督导员", en: "publicity supervisor" },
};

function Members(props: { id: string }) {
  useLang();
  const [team, setTeam] = useState<TeamProfile | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    must(getTeam({ client: api, path: { team_id: props.id } }))
      .then(setTeam)
      .catch((error: Problem) => setProblem(error));
  }, [props.id]);
  if (problem) return <ErrorLine problem={problem} />;
  if (!team) return <p aria-busy="true">…</p>;
  return (
    <ul class="members">
      {team.members.map((m) => (
        <li>
          <strong>{m.display_name}</strong>
          {m.on_duty && <span class="badge-on">{tr(TEXT.onDutyNow)}</span>}
          <br />
          <span class="hint">
            {[tr(m.kind === "full_time" ? TEXT.fullTime : TEXT.partTime), ...m.roles.map((r) => (ROLES[r] ? tr(ROLES[r]) : r))].join("、")}
          </span>
        </li>
      ))}
    </ul>
  );
}

function TeamCard(props: { team: NearbyTeam }) {
  useLang();
  const [open, setOpen] = useState(false);
  const { team } = props;
  return (
    <li class="team">
      <div class="team-head">
        <strong class="team-name">{team.name}</strong>
        <span class="team-distance">{tr(TEXT.away, { d: formatDistance(team.distance_m) })}</span>
      </div>
      <p class="team-meta">
        {team.grid.name} · <span class={team.on_duty_count > 0 ? "on" : ""}>{tr(TEXT.onDuty, { n: team.on_duty_count })}</span>
      </p>
      <p class="team-content">{team.service_content || tr(TEXT.noContent)}</p>
      <button type="button" class="secondary" aria-expanded={open} onClick={() => setOpen(!open)}>
        {tr(open ? TEXT.hide : TEXT.members)}
      </button>
      {open && <Members id={team.id} />}
    </li>
  );
}

export default function NearbyTeams(props: { at: Point }) {
  useLang();
  const [teams, setTeams] = useState<NearbyTeam[] | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const { lat, lng } = props.at;
  useEffect(() => {
    let current = true;
    must(listNearbyTeams({ client: api, query: { lat, lng, radius_m: 3000, limit: 5 } }))
      .then((answer) => current && setTeams(answer.data))
      .catch((error: Problem) => current && setProblem(error));
    return () => {
      current = false;
    };
  }, [lat.toFixed(4), lng.toFixed(4)]);
  return (
    <section class="card nearby" aria-labelledby="nearby-title">
      <h2 id="nearby-title">{tr(TEXT.title)}</h2>
      <ErrorLine problem={problem} />
      {teams && teams.length === 0 && <p>{tr(TEXT.none)}</p>}
      {teams && (
        <ul class="teams">
          {teams.map((team) => (
            <TeamCard key={team.id} team={team} />
          ))}
        </ul>
      )}
    </section>
  );
}
