// The member's own service: the households paired with them, logging an
// activity, and the month against the quota (GET /me/activities).
import { useEffect, useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { createActivity, listMyActivities, listMyHouseholds } from "../../gen/sdk.gen";
import type { ActivityKind, HouseholdPublic, MyMonth, TeamRef } from "../../gen/types.gen";
import { lang, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { ErrorLine, useAct } from "../../ui";
import { KIND, TAG, label } from "./labels";

const TEXT = {
  monthTitle: { zh: "本月服务", en: "This month's service" },
  counted: { zh: "本月已参加 {n} 次服务活动", en: "{n} service activities this month" },
  required: { zh: "每月要求 {n} 次", en: "{n} a month are asked of you" },
  short: { zh: "每月要求 {n} 次，还差 {m} 次", en: "{n} a month are asked: {m} more to go" },
  met: { zh: "每月要求 {n} 次，本月已完成 ✓", en: "{n} a month are asked: done ✓" },
  partTime: { zh: "兼职队员不考核次数", en: "Part-time members have no quota" },
  none: { zh: "本月还没有记录", en: "Nothing recorded yet this month" },
  fromCall: { zh: "来自呼叫", en: "from a call" },
  minutes: { zh: "{n} 分钟", en: "{n} min" },
  householdsTitle: { zh: "我联系的住户", en: "My households" },
  noHouseholds: { zh: "还没有结对的住户", en: "No household is paired with you yet" },
  residents: { zh: "住户：{names}", en: "Living there: {names}" },
  logFor: { zh: "为这户记一次服务", en: "Log a visit here" },
  logTitle: { zh: "记录一次服务活动", en: "Log a service activity" },
  team: { zh: "服务队", en: "Team" },
  kind: { zh: "服务类型", en: "Kind" },
  when: { zh: "时间", en: "When" },
  duration: { zh: "用时（分钟）", en: "Minutes taken" },
  household: { zh: "服务的住户（可不选）", en: "Household served (optional)" },
  noHousehold: { zh: "不涉及住户", en: "No household" },
  note: { zh: "做了什么（可不填）", en: "What you did (optional)" },
  save: { zh: "保存记录", en: "Save" },
  saved: { zh: "已记录，谢谢您！", en: "Saved. Thank you!" },
} satisfies Record<string, Text>;

const KINDS: ActivityKind[] = ["visit", "affairs", "mediation", "hardship", "safety", "event"];

/** Now as the value of a datetime-local field (local time, to the minute). */
function localNow(): string {
  const now = new Date();
  now.setMinutes(now.getMinutes() - now.getTimezoneOffset());
  return now.toISOString().slice(0, 16);
}

function formatDay(iso: string): string {
  return new Date(iso).toLocaleString(lang.get() === "zh" ? "zh-CN" : "en-GB", {
    month: "numeric",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function MonthCard(props: { month: MyMonth | null }) {
  useLang();
  const { month } = props;
  if (!month) return null;
  const share = Math.min(1, month.counted / Math.max(1, month.required));
  return (
    <section class="card my-month" aria-labelledby="month-title">
      <h2 id="month-title">
        {tr(TEXT.monthTitle)} <span class="hint">{month.month}</span>
      </h2>
      <p class="month-count">{tr(TEXT.counted, { n: month.counted })}</p>
      {month.full_time ? (
        <>
          <div
            class="quota-bar"
            role="progressbar"
            aria-valuemin={0}
            aria-valuemax={month.required}
            aria-valuenow={Math.min(month.counted, month.required)}
            aria-label={tr(TEXT.required, { n: month.required })}
          >
            <span style={{ width: `${share * 100}%` }} />
          </div>
          <p class={month.short_by > 0 ? "quota-short" : "quota-met"}>
            {month.short_by > 0
              ? tr(TEXT.short, { n: month.required, m: month.short_by })
              : tr(TEXT.met, { n: month.required })}
          </p>
        </>
      ) : (
        <p class="hint">{tr(TEXT.partTime)}</p>
      )}
      {month.data.length === 0 ? (
        <p class="hint">{tr(TEXT.none)}</p>
      ) : (
        <ul class="activity-list">
          {month.data.map((activity) => (
            <li data-activity={activity.id}>
              <strong>{tr(label(KIND, activity.kind))}</strong> · {formatDay(activity.at)}
              {activity.duration_min > 0 && <> · {tr(TEXT.minutes, { n: activity.duration_min })}</>}
              {activity.source === "call" && <> · {tr(TEXT.fromCall)}</>}
              {activity.note && <div class="hint">{activity.note}</div>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Households(props: { households: HouseholdPublic[]; onLog: (id: string) => void }) {
  useLang();
  return (
    <section class="card households" aria-labelledby="households-title">
      <h2 id="households-title">{tr(TEXT.householdsTitle)}</h2>
      {props.households.length === 0 ? (
        <p class="hint">{tr(TEXT.noHouseholds)}</p>
      ) : (
        <ul class="household-list">
          {props.households.map((household) => (
            <li data-household={household.id}>
              <p class="household-address">{household.address}</p>
              <p class="tags">
                {household.tags.map((tag) => (
                  <span class="tag">{tr(label(TAG, tag))}</span>
                ))}
              </p>
              {household.residents.length > 0 && (
                <p>
                  {tr(TEXT.residents, {
                    names: household.residents.map((r) => `${r.display_name}（${r.phone_masked}）`).join("，"),
                  })}
                </p>
              )}
              <button type="button" class="secondary" onClick={() => props.onLog(household.id)}>
                {tr(TEXT.logFor)}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function ActivityForm(props: {
  teams: TeamRef[];
  households: HouseholdPublic[];
  household: string;
  onHousehold: (id: string) => void;
  onSaved: () => void;
}) {
  useLang();
  const [team, setTeam] = useState(props.teams[0]?.id ?? "");
  const [kind, setKind] = useState<ActivityKind>("visit");
  const [when, setWhen] = useState(localNow());
  const [duration, setDuration] = useState("30");
  const [note, setNote] = useState("");
  const { busy, problem, act } = useAct();
  const [saved, setSaved] = useState(false);

  const save = (event: Event) => {
    event.preventDefault();
    setSaved(false);
    return act(async () => {
      await must(
        createActivity({
          client: api,
          body: {
            team_id: team,
            kind,
            at: new Date(when).toISOString(),
            duration_min: Math.max(0, Math.min(1440, Math.round(Number(duration) || 0))),
            note: note.trim() || null,
            household_id: props.household || null,
          },
        }),
      );
      setSaved(true);
      setNote("");
      props.onHousehold("");
      props.onSaved();
    });
  };

  return (
    <form class="card activity-form" aria-labelledby="log-title" onSubmit={save}>
      <h2 id="log-title">{tr(TEXT.logTitle)}</h2>
      {props.teams.length > 1 && (
        <label>
          {tr(TEXT.team)}
          <select name="team" value={team} onChange={(e) => setTeam(e.currentTarget.value)}>
            {props.teams.map((t) => (
              <option value={t.id}>{t.name}</option>
            ))}
          </select>
        </label>
      )}
      <label>
        {tr(TEXT.kind)}
        <select name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as ActivityKind)}>
          {KINDS.map((k) => (
            <option value={k}>{tr(KIND[k])}</option>
          ))}
        </select>
      </label>
      <div class="form-pair">
        <label>
          {tr(TEXT.when)}
          <input name="at" type="datetime-local" required value={when} onInput={(e) => setWhen(e.currentTarget.value)} />
        </label>
        <label>
          {tr(TEXT.duration)}
          <input
            name="duration"
            type="number"
            inputMode="numeric"
            min={0}
            max={1440}
            required
            value={duration}
            onInput={(e) => setDuration(e.currentTarget.value)}
          />
        </label>
      </div>
      <label>
        {tr(TEXT.household)}
        <select name="household" value={props.household} onChange={(e) => props.onHousehold(e.currentTarget.value)}>
          <option value="">{tr(TEXT.noHousehold)}</option>
          {props.households.map((h) => (
            <option value={h.id}>{h.address}</option>
          ))}
        </select>
      </label>
      <label>
        {tr(TEXT.note)}
        <textarea name="note" rows={2} maxLength={500} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </label>
      <ErrorLine problem={problem} />
      {saved && (
        <p class="saved" role="status">
          {tr(TEXT.saved)}
        </p>
      )}
      <button type="submit" class="primary big" disabled={busy || !team}>
        {tr(TEXT.save)}
      </button>
    </form>
  );
}

/** Households, the activity form and the month; `version` changes re-read the month. */
export function Service(props: { teams: TeamRef[]; version: number }) {
  const [households, setHouseholds] = useState<HouseholdPublic[]>([]);
  const [month, setMonth] = useState<MyMonth | null>(null);
  const [household, setHousehold] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saves, setSaves] = useState(0);

  useEffect(() => {
    must(listMyHouseholds({ client: api }))
      .then((list) => setHouseholds(list.data))
      .catch((error: Problem) => setProblem(error));
  }, []);
  useEffect(() => {
    must(listMyActivities({ client: api, query: { limit: 20 } }))
      .then(setMonth)
      .catch((error: Problem) => setProblem(error));
  }, [props.version, saves]);

  return (
    <div class="service">
      <ErrorLine problem={problem} />
      <MonthCard month={month} />
      <Households
        households={households}
        onLog={(id) => {
          setHousehold(id);
          document.getElementById("log-title")?.scrollIntoView({ behavior: "smooth", block: "start" });
        }}
      />
      <ActivityForm
        teams={props.teams}
        households={households}
        household={household}
        onHousehold={setHousehold}
        onSaved={() => setSaves((n) => n + 1)}
      />
    </div>
  );
}
