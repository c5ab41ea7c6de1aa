// The month of the dispatcher's area: the full-time members short of the
// activity quota (GET /dispatch/quota), the Governance and Service Stars
// (GET /stars), and the monthly report as an XLSX download
// (GET /dispatch/reports/{month}.xlsx, fetched with the bearer token).
import { useEffect, useState } from "preact/hooks";
import { api, must, session } from "../../api";
import type { Problem } from "../../api";
import { getMonthlyReport, listAreas, listQuotaShortfalls, listStars } from "../../gen/sdk.gen";
import type { QuotaReport, Star, StarRankings } from "../../gen/types.gen";
import { tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { ErrorLine } from "../../ui";

/** The area whose stars are shown: a dispatcher's own; for an admin, who
 * serves no one area, the whole district (its street). */
async function starsArea(): Promise<string | undefined> {
  const mine = session.get()?.user.dispatcher_area?.id;
  if (mine) return undefined; // the API defaults to the dispatcher's area
  const streets = await must(listAreas({ client: api, query: { level: "street" } }));
  return streets.features[0]?.properties.id;
}

const TEXT = {
  month: { zh: "月份", en: "Month" },
  download: { zh: "下载月度报表（Excel）", en: "Download the monthly report (Excel)" },
  downloading: { zh: "正在生成报表…", en: "Making the report…" },
  downloaded: { zh: "报表已下载", en: "The report was downloaded" },
  quota: { zh: "未完成每月服务任务的专职党员", en: "Full-time members short of the monthly quota" },
  quotaRule: { zh: "每月至少参加 {n} 次服务活动", en: "At least {n} service activities a month" },
  quotaNone: { zh: "本月所有专职党员都已完成任务。", en: "Every full-time member has met the quota this month." },
  quotaLine: { zh: "已完成 {done} 次，还差 {short} 次", en: "{done} done, {short} to go" },
  governance: { zh: "治理之星", en: "Governance Stars" },
  service: { zh: "服务之星", en: "Service Stars" },
  noStars: { zh: "本月暂无排名", en: "No ranking yet this month" },
  score: { zh: "{n} 分", en: "{n} points" },
  frozen: { zh: "本月排名已定", en: "This month's ranking is final" },
  loading: { zh: "加载中…", en: "Loading…" },
} satisfies Record<string, Text>;

const TOP = 10;

/** Save a blob as a file: an object URL the browser downloads, then forgets. */
function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

export default function Month() {
  useLang();
  // Empty at first: the API's current month (in the district's time zone)
  // answers, and fills the field.
  const [month, setMonth] = useState("");
  const [loadedFor, setLoadedFor] = useState("");
  const [quota, setQuota] = useState<QuotaReport | null>(null);
  const [stars, setStars] = useState<StarRankings | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [report, setReport] = useState<"idle" | "busy" | "done">("idle");

  useEffect(() => {
    if (month && (!/^\d{4}-\d{2}$/.test(month) || month === loadedFor)) return;
    let current = true;
    setProblem(null);
    setQuota(null);
    setStars(null);
    void Promise.all([
      must(listQuotaShortfalls({ client: api, query: { month: month || undefined } })),
      starsArea().then((area_id) =>
        must(listStars({ client: api, query: { month: month || undefined, area_id } })),
      ),
    ]).then(
      ([q, s]) => {
        if (!current) return;
        setQuota(q);
        setStars(s);
        setLoadedFor(q.month);
        if (!month) setMonth(q.month);
      },
      (error) => current && setProblem(error as Problem),
    );
    return () => {
      current = false;
    };
  }, [month]);

  const download = async () => {
    setReport("busy");
    setProblem(null);
    try {
      const blob = await must(getMonthlyReport({ client: api, path: { month }, parseAs: "blob" }));
      save(blob, `hulian-report-${month}.xlsx`);
      setReport("done");
    } catch (error) {
      setProblem(error as Problem);
      setReport("idle");
    }
  };

  return (
    <section class="month" aria-label={tr(TEXT.month)}>
      <div class="card row month-bar">
        <label>
          {tr(TEXT.month)}
          <input type="month" name="month" value={month} onInput={(e) => setMonth(e.currentTarget.value)} />
        </label>
        <button type="button" class="primary" disabled={report === "busy" || !month} onClick={() => void download()}>
          {report === "busy" ? tr(TEXT.downloading) : tr(TEXT.download)}
        </button>
        {report === "done" && (
          <span class="ok" role="status">
            {tr(TEXT.downloaded)}
          </span>
        )}
      </div>
      <ErrorLine problem={problem} />
      <div class="month-grid">
        <section class="card quota" aria-labelledby="quota-title">
          <h3 id="quota-title">{tr(TEXT.quota)}</h3>
          {!quota && !problem && <p>{tr(TEXT.loading)}</p>}
          {quota && (
            <>
              <p class="hint">{tr(TEXT.quotaRule, { n: quota.required })}</p>
              {quota.data.length === 0 && <p>{tr(TEXT.quotaNone)}</p>}
              <ul class="plain-list">
                {quota.data.map((row) => (
                  <li data-person-id={row.person_id}>
                    <strong>{row.display_name}</strong>
                    <span class="muted">{row.team.name}</span>
                    <span class="short">{tr(TEXT.quotaLine, { done: row.activities, short: row.short_by })}</span>
                  </li>
                ))}
              </ul>
            </>
          )}
        </section>
        <Ranking id="governance" title={tr(TEXT.governance)} stars={stars?.governance} frozen={stars?.frozen} />
        <Ranking id="service" title={tr(TEXT.service)} stars={stars?.service} frozen={stars?.frozen} />
      </div>
    </section>
  );
}

function Ranking(props: { id: string; title: string; stars?: Star[]; frozen?: boolean }) {
  return (
    <section class="card stars" aria-labelledby={`${props.id}-title`} data-stars={props.id}>
      <h3 id={`${props.id}-title`}>{props.title}</h3>
      {props.frozen && <p class="hint">{tr(TEXT.frozen)}</p>}
      {!props.stars && <p>{tr(TEXT.loading)}</p>}
      {props.stars && props.stars.length === 0 && <p>{tr(TEXT.noStars)}</p>}
      {props.stars && props.stars.length > 0 && (
        <ol class="plain-list ranking">
          {props.stars.slice(0, TOP).map((star) => (
            <li data-person-id={star.person_id}>
              <strong>{star.display_name}</strong>
              <span class="muted">{star.team.name}</span>
              <span class="score">{tr(TEXT.score, { n: star.score })}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
