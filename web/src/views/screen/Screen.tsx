// The public screen of an area (党群亮服务可视屏), for a wall or a kiosk: no
// login, today's figures, the teams and who is on duty, the latest calls by
// category and grid only, the month's stars; kept current all day by the
// feed's Server-Sent Events stream. A screen registered with its key also
// has the big call button for a resident who walks up (WalkUp.tsx).
// #/screen/<area_id>[/<screen_id>[#key=…]]
import { useEffect, useMemo, useState } from "preact/hooks";
import { problemText, tr, useLang, lang, formatTime } from "../../i18n";
import type { Text } from "../../i18n";
import type { CallStatus, ScreenFeed, ScreenStar, ScreenTeam } from "../../gen/types.gen";
import { CATEGORY } from "../../names";
import { LanguageSwitch } from "../../ui";
import { adoptRoute, forgetKey, storedKey, storeKey } from "./device";
import { useScreenFeed } from "./feed";
import type { StreamStatus } from "./feed";
import { CallButton, WalkUp } from "./WalkUp";
import "./screen.css";

const TEAMS_PER_PAGE = 5;
const PAGE_MS = 12_000;

const TEXT = {
  brand: { zh: "党群亮服务", en: "Party–masses service" },
  today: { zh: "今日服务", en: "Today" },
  calls: { zh: "今日呼叫", en: "Calls today" },
  resolved: { zh: "已办结", en: "Resolved" },
  accept: { zh: "平均接单用时", en: "Typical time to accept" },
  satisfaction: { zh: "居民满意度", en: "Satisfaction" },
  onDuty: { zh: "在岗党员", en: "Members on duty" },
  unit: { zh: "件", en: "" },
  people: { zh: "人", en: "" },
  outOf5: { zh: "/ 5 分", en: "of 5" },
  none: { zh: "暂无", en: "None yet" },
  seconds: { zh: "{s} 秒", en: "{s} s" },
  minutes: { zh: "{m} 分 {s} 秒", en: "{m} min {s} s" },
  teams: { zh: "服务队伍", en: "Service teams" },
  teamOnDuty: { zh: "{n} 人在岗", en: "{n} on duty" },
  teamOff: { zh: "暂未在岗", en: "Off duty" },
  noTeams: { zh: "本区域还没有服务队伍", en: "No teams here yet" },
  page: { zh: "第 {p} / {n} 页", en: "Page {p} of {n}" },
  recent: { zh: "最近的呼叫", en: "Recent calls" },
  noRecent: { zh: "最近还没有呼叫", en: "No calls lately" },
  stars: { zh: "本月之星", en: "Stars of the month" },
  governance: { zh: "治理之星", en: "Governance Star" },
  service: { zh: "服务之星", en: "Service Star" },
  noStars: { zh: "本月暂无", en: "None yet this month" },
  points: { zh: "{n} 分", en: "{n} pts" },
  live: { zh: "实时更新", en: "Live" },
  connecting: { zh: "正在连接…", en: "Connecting…" },
  reconnecting: { zh: "正在重新连接…", en: "Reconnecting…" },
  updated: { zh: "更新于 {t}", en: "Updated {t}" },
  loading: { zh: "正在读取…", en: "Loading…" },
  noArea: { zh: "请在地址中写明区域：#/screen/区域编号", en: "Name the area in the address: #/screen/<area id>" },
  settings: { zh: "屏幕设置", en: "Screen settings" },
  setupTitle: { zh: "设置这块屏幕的呼叫按钮", en: "Set up this screen's call button" },
  setupHint: {
    zh: "输入管理员登记屏幕时得到的密钥。密钥只存在这台设备上。",
    en: "Enter the key the admin got when registering this screen. It is kept on this device only.",
  },
  keyLabel: { zh: "屏幕密钥", en: "Screen key" },
  save: { zh: "保存", en: "Save" },
  forget: { zh: "忘记这块屏幕的密钥", en: "Forget this screen's key" },
  forgetHint: {
    zh: "忘记后，这块屏幕只显示数据，不再有呼叫按钮。",
    en: "Once forgotten, this screen shows the figures only, with no call button.",
  },
  close: { zh: "关闭", en: "Close" },
} satisfies Record<string, Text>;


const STATUS: Record<CallStatus, Text> = {
  searching: { zh: "正在派单", en: "Finding a team" },
  offered: { zh: "正在派单", en: "Finding a team" },
  escalated: { zh: "社区调度中", en: "With the community" },
  accepted: { zh: "已接单", en: "Taken" },
  en_route: { zh: "党员在路上", en: "On the way" },
  on_site: { zh: "党员已到场", en: "On site" },
  resolved: { zh: "已办结", en: "Resolved" },
  cancelled: { zh: "已取消", en: "Cancelled" },
};

function duration(seconds: number): string {
  const s = Math.round(seconds);
  return s < 60 ? tr(TEXT.seconds, { s }) : tr(TEXT.minutes, { m: Math.floor(s / 60), s: s % 60 });
}

function useClock(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => window.clearInterval(timer);
  }, [everyMs]);
  return now;
}

function Figure(props: { label: Text; value: string; unit?: string; name: string; wide?: boolean; none?: boolean }) {
  return (
    <div class={`figure${props.wide ? " figure-wide" : ""}`} data-figure={props.name}>
      <span class="figure-label">{tr(props.label)}</span>
      <span class={`figure-value${props.none ? " figure-none" : ""}`}>
        {props.value}
        {props.unit && <span class="figure-unit">{props.unit}</span>}
      </span>
    </div>
  );
}

function Figures(props: { feed: ScreenFeed }) {
  const { today, on_duty_members } = props.feed;
  const none = tr(TEXT.none);
  return (
    <section class="screen-figures" aria-label={tr(TEXT.today)}>
      <Figure name="calls" label={TEXT.calls} value={String(today.calls)} unit={tr(TEXT.unit)} />
      <Figure name="resolved" label={TEXT.resolved} value={String(today.resolved)} unit={tr(TEXT.unit)} />
      <Figure name="on-duty" label={TEXT.onDuty} value={String(on_duty_members)} unit={tr(TEXT.people)} />
      <Figure
        name="satisfaction"
        label={TEXT.satisfaction}
        none={today.satisfaction_avg === null}
        value={today.satisfaction_avg === null ? none : today.satisfaction_avg.toFixed(1)}
        unit={today.satisfaction_avg === null ? undefined : tr(TEXT.outOf5)}
      />
      <Figure
        name="accept"
        wide
        label={TEXT.accept}
        none={today.accept_p50_s === null}
        value={today.accept_p50_s === null ? none : duration(today.accept_p50_s)}
      />
    </section>
  );
}

function Teams(props: { teams: ScreenTeam[] }) {
  const pages = Math.max(1, Math.ceil(props.teams.length / TEAMS_PER_PAGE));
  const [page, setPage] = useState(0);
  useEffect(() => {
    if (pages < 2) return;
    const timer = window.setInterval(() => setPage((p) => (p + 1) % pages), PAGE_MS);
    return () => window.clearInterval(timer);
  }, [pages]);
  const shown = props.teams.slice((page % pages) * TEAMS_PER_PAGE, (page % pages) * TEAMS_PER_PAGE + TEAMS_PER_PAGE);
  return (
    <section class="screen-panel screen-teams" aria-labelledby="screen-teams">
      <h2 id="screen-teams">
        {tr(TEXT.teams)}
        {pages > 1 && <span class="screen-page">{tr(TEXT.page, { p: (page % pages) + 1, n: pages })}</span>}
      </h2>
      {shown.length === 0 && <p class="screen-empty">{tr(TEXT.noTeams)}</p>}
      <ul>
        {shown.map((team) => (
          <li class={team.on_duty_count > 0 ? "on" : "off"}>
            <span class="team-name">{team.name}</span>
            <span class="team-duty">
              {team.on_duty_count > 0 ? tr(TEXT.teamOnDuty, { n: team.on_duty_count }) : tr(TEXT.teamOff)}
            </span>
            {team.service_content && <span class="team-content">{team.service_content}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Recent(props: { feed: ScreenFeed }) {
  const shown = props.feed.recent.slice(0, 5);
  return (
    <section class="screen-panel screen-recent" aria-labelledby="screen-recent">
      <h2 id="screen-recent">{tr(TEXT.recent)}</h2>
      {shown.length === 0 && <p class="screen-empty">{tr(TEXT.noRecent)}</p>}
      <ul>
        {shown.map((call) => (
          <li>
            <span class="recent-time">{formatTime(call.at)}</span>
            <span class="recent-what">
              {tr(CATEGORY[call.category])} · {call.grid.name}
            </span>
            <span class={`recent-status status-${call.status}`}>{tr(STATUS[call.status])}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function StarList(props: { title: Text; stars: ScreenStar[] }) {
  return (
    <div class="star-list">
      <h3>{tr(props.title)}</h3>
      {props.stars.length === 0 && <p class="screen-empty">{tr(TEXT.noStars)}</p>}
      <ol>
        {props.stars.slice(0, 3).map((star) => (
          <li>
            <span class="star-name">{star.display_name}</span>
            <span class="star-team">{star.team}</span>
            <span class="star-score">{tr(TEXT.points, { n: star.score })}</span>
          </li>
        ))}
      </ol>
    </div>
  );
}

function Stars(props: { feed: ScreenFeed }) {
  return (
    <section class="screen-panel screen-stars" aria-labelledby="screen-stars">
      <h2 id="screen-stars">{tr(TEXT.stars)}</h2>
      <div class="star-lists">
        <StarList title={TEXT.governance} stars={props.feed.stars.governance} />
        <StarList title={TEXT.service} stars={props.feed.stars.service} />
      </div>
    </section>
  );
}

function StreamBadge(props: { status: StreamStatus; at: number }) {
  const label = props.status === "live" ? TEXT.live : props.status === "connecting" ? TEXT.connecting : TEXT.reconnecting;
  return (
    <span class={`screen-stream stream-${props.status}`} role="status" data-stream={props.status}>
      {tr(label)}
      {props.at > 0 && <> · {tr(TEXT.updated, { t: formatTime(new Date(props.at).toISOString()) })}</>}
    </span>
  );
}

/** The device's settings: the key of a screen not set up yet, or forgetting it. */
function Settings(props: { screenId: string; hasKey: boolean; onChange: () => void; onClose: () => void }) {
  const [key, setKey] = useState("");
  return (
    <div class="walkup" role="dialog" aria-modal="true" aria-labelledby="screen-settings">
      <div class="walkup-panel screen-settings">
        <h2 id="screen-settings">{tr(props.hasKey ? TEXT.settings : TEXT.setupTitle)}</h2>
        {props.hasKey ? (
          <>
            <p class="walkup-hint">{tr(TEXT.forgetHint)}</p>
            <div class="walkup-actions">
              <button type="button" class="secondary" onClick={props.onClose}>
                {tr(TEXT.close)}
              </button>
              <button
                type="button"
                class="primary"
                onClick={() => {
                  forgetKey(props.screenId);
                  props.onChange();
                }}
              >
                {tr(TEXT.forget)}
              </button>
            </div>
          </>
        ) : (
          <form
            onSubmit={(event) => {
              event.preventDefault();
              if (!key.trim()) return;
              storeKey(props.screenId, key);
              props.onChange();
            }}
          >
            <p class="walkup-hint">{tr(TEXT.setupHint)}</p>
            <label>
              {tr(TEXT.keyLabel)}
              <input
                name="screen-key"
                type="password"
                autoComplete="off"
                required
                value={key}
                onInput={(e) => setKey(e.currentTarget.value)}
              />
            </label>
            <div class="walkup-actions">
              <button type="button" class="secondary" onClick={props.onClose}>
                {tr(TEXT.close)}
              </button>
              <button type="submit" class="primary">
                {tr(TEXT.save)}
              </button>
            </div>
          </form>
        )}
      </div>
    </div>
  );
}

export default function Screen(props: { args: string[] }) {
  useLang();
  const areaId = props.args[0] ?? "";
  // The screen's id; a key that came with it goes into storage, out of the address.
  const screenId = props.args[1]?.split("#")[0] || null;
  const [stored, setStored] = useState(0);
  // (Adopted during the render, so that the key is read in this same one.)
  useMemo(() => adoptRoute(areaId, props.args[1]), [areaId, props.args[1]]);
  const screenKey = useMemo(() => (screenId ? storedKey(screenId) : null), [props.args[1], stored]);
  const [calling, setCalling] = useState(false);
  const [settings, setSettings] = useState(false);
  const { feed, problem, status, at } = useScreenFeed(areaId);
  const now = useClock(15_000);

  useEffect(() => {
    document.title = feed ? `${tr(TEXT.brand)} · ${feed.area.name}` : tr(TEXT.brand);
  }, [feed?.area.name, lang.get()]);

  if (!areaId) {
    return (
      <main class="screen screen-message">
        <p>{tr(TEXT.noArea)}</p>
      </main>
    );
  }

  const clock = new Date(now);
  const date = clock.toLocaleDateString(lang.get() === "zh" ? "zh-CN" : "en-GB", {
    month: "long",
    day: "numeric",
    weekday: "long",
  });
  return (
    <div class={`screen${screenKey ? " screen-with-button" : ""}`}>
      <header class="screen-head">
        <div class="screen-brand">
          <span class="screen-emblem" aria-hidden="true">
            ★
          </span>
          <div>
            <h1>{tr(TEXT.brand)}</h1>
            <p class="screen-area">{feed?.area.name ?? "…"}</p>
          </div>
        </div>
        <div class="screen-clock">
          <span class="screen-time">{formatTime(clock.toISOString())}</span>
          <span class="screen-date">{date}</span>
        </div>
      </header>
      <main class="screen-body" id="main">
        {problem && !feed && <p class="screen-problem" role="alert">{problemText(problem)}</p>}
        {!feed && !problem && <p class="screen-loading">{tr(TEXT.loading)}</p>}
        {feed && (
          <>
            <div class="screen-left">
              <Figures feed={feed} />
              {screenKey && screenId && <CallButton onPress={() => setCalling(true)} />}
            </div>
            <Teams teams={feed.teams} />
            <div class="screen-right">
              <Recent feed={feed} />
              <Stars feed={feed} />
            </div>
          </>
        )}
      </main>
      <footer class="screen-foot">
        <StreamBadge status={status} at={at} />
        <div class="screen-foot-end">
          <LanguageSwitch />
          {screenId && (
            <button type="button" class="secondary screen-settings-button" onClick={() => setSettings(true)}>
              {tr(TEXT.settings)}
            </button>
          )}
        </div>
      </footer>
      {screenId && screenKey && (
        <WalkUp screenId={screenId} screenKey={screenKey} open={calling} onClose={() => setCalling(false)} />
      )}
      {settings && screenId && (
        <Settings
          screenId={screenId}
          hasKey={!!screenKey}
          onClose={() => setSettings(false)}
          onChange={() => {
            setStored((n) => n + 1);
            setSettings(false);
          }}
        />
      )}
    </div>
  );
}
