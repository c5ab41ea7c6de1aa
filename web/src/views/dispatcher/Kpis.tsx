// The area's KPIs (GET /dispatch/kpis, docs/kpis.md) by day, week or month:
// two charts (uPlot, loaded only here) and the same figures as a table,
// which is what a screen reader and a test read.
import type uPlot from "uplot";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, must } from "../../api";
import type { Problem } from "../../api";
import { listKpis } from "../../gen/sdk.gen";
import type { KpiBucket, KpiRow } from "../../gen/types.gen";
import { lang, tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { ErrorLine } from "../../ui";

const TEXT = {
  title: { zh: "统计指标", en: "Dispatch KPIs" },
  from: { zh: "开始日期", en: "From" },
  to: { zh: "结束日期", en: "To" },
  bucket: { zh: "按", en: "By" },
  day: { zh: "天", en: "Day" },
  week: { zh: "周", en: "Week" },
  month: { zh: "月", en: "Month" },
  show: { zh: "查询", en: "Show" },
  loading: { zh: "加载中…", en: "Loading…" },
  volume: { zh: "呼叫量", en: "Calls" },
  volumeAbout: {
    zh: "每{bucket}的呼叫数与已解决数，共 {calls} 次呼叫，已解决 {resolved} 次",
    en: "Calls and resolved calls per {bucket}: {calls} calls, {resolved} resolved in all",
  },
  rates: { zh: "响应率、解决率、满意率（%）", en: "Response, resolution and satisfaction (%)" },
  ratesAbout: {
    zh: "每{bucket}的响应率、解决率、满意率和 60 秒内接单率，详见下表",
    en: "Response, resolution, satisfaction and accepted-within-60-s rates per {bucket}; the table below has every figure",
  },
  table: { zh: "指标明细", en: "The figures" },
  period: { zh: "时段", en: "Period" },
  calls: { zh: "呼叫数", en: "Calls" },
  resolved: { zh: "已解决", en: "Resolved" },
  within60: { zh: "60 秒内接单率", en: "Accepted within 60 s" },
  accept: { zh: "接单用时中位数", en: "Median time to accept" },
  onSite: { zh: "到场用时中位数", en: "Median time to arrive" },
  response: { zh: "响应率", en: "Response rate" },
  resolution: { zh: "解决率", en: "Resolution rate" },
  satisfied: { zh: "满意率", en: "Satisfaction rate" },
  stars: { zh: "平均评分", en: "Average rating" },
  escalatedPct: { zh: "升级比例", en: "Escalated" },
  seconds: { zh: "{n} 秒", en: "{n} s" },
  minutes: { zh: "{n} 分钟", en: "{n} min" },
} satisfies Record<string, Text>;

type Figure = keyof KpiRow;
const COLUMNS: [Figure, Text, "n" | "pct" | "s" | "avg"][] = [
  ["calls", TEXT.calls, "n"],
  ["resolved", TEXT.resolved, "n"],
  ["response_rate_pct", TEXT.response, "pct"],
  ["resolution_rate_pct", TEXT.resolution, "pct"],
  ["satisfied_pct", TEXT.satisfied, "pct"],
  ["accepted_within_60s_pct", TEXT.within60, "pct"],
  ["accept_p50_s", TEXT.accept, "s"],
  ["on_site_p50_s", TEXT.onSite, "s"],
  ["satisfaction_avg", TEXT.stars, "avg"],
  ["escalated_pct", TEXT.escalatedPct, "pct"],
];

const RATE_LINES: [Figure, Text, string][] = [
  ["response_rate_pct", TEXT.response, "#0d47a1"],
  ["resolution_rate_pct", TEXT.resolution, "#1b5e20"],
  ["satisfied_pct", TEXT.satisfied, "#b71c1c"],
  ["accepted_within_60s_pct", TEXT.within60, "#6a1b9a"],
];
const VOLUME: [Figure, Text, string][] = [
  ["calls", TEXT.calls, "#b71c1c"],
  ["resolved", TEXT.resolved, "#1b5e20"],
];

function show(value: unknown, how: "n" | "pct" | "s" | "avg"): string {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (how === "pct") return `${n.toFixed(1)}%`;
  if (how === "avg") return n.toFixed(2);
  if (how === "s") return n < 120 ? tr(TEXT.seconds, { n: Math.round(n) }) : tr(TEXT.minutes, { n: (n / 60).toFixed(1) });
  return String(n);
}

function period(row: KpiRow, bucket: KpiBucket): string {
  const [y, m, d] = row.bucket_start.split("-");
  if (bucket === "month") return lang.get() === "zh" ? `${y}年${Number(m)}月` : `${y}-${m}`;
  const day = lang.get() === "zh" ? `${Number(m)}月${Number(d)}日` : `${d}/${m}`;
  return bucket === "week" ? (lang.get() === "zh" ? `${day}起一周` : `week of ${day}`) : day;
}

export default function Kpis() {
  useLang();
  // Empty at first: the API's default range (the district's month so far,
  // in its time zone), which then fills the two fields.
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [bucket, setBucket] = useState<KpiBucket>("day");
  const [rows, setRows] = useState<{ bucket: KpiBucket; data: KpiRow[] } | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);

  const load = async () => {
    setBusy(true);
    setProblem(null);
    try {
      const answer = await must(
        listKpis({ client: api, query: { from: from || undefined, to: to || undefined, bucket } }),
      );
      setRows({ bucket, data: answer.data });
      const [first, last] = [answer.data[0], answer.data[answer.data.length - 1]];
      if (!from && first) setFrom(first.bucket_start);
      if (!to && last) setTo(last.bucket_start);
    } catch (error) {
      setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void load(), []);

  const unit = rows ? tr(TEXT[rows.bucket]) : "";
  const total = (key: "calls" | "resolved") => (rows?.data ?? []).reduce((sum, r) => sum + r[key], 0);
  return (
    <section class="kpis" aria-labelledby="kpi-title">
      <h3 id="kpi-title">{tr(TEXT.title)}</h3>
      <form
        class="card kpi-form"
        onSubmit={(e) => {
          e.preventDefault();
          void load();
        }}
      >
        <label>
          {tr(TEXT.from)}
          <input type="date" name="from" value={from} max={to || undefined} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          {tr(TEXT.to)}
          <input type="date" name="to" value={to} min={from || undefined} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          {tr(TEXT.bucket)}
          <select name="bucket" value={bucket} onChange={(e) => setBucket(e.currentTarget.value as KpiBucket)}>
            <option value="day">{tr(TEXT.day)}</option>
            <option value="week">{tr(TEXT.week)}</option>
            <option value="month">{tr(TEXT.month)}</option>
          </select>
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {tr(TEXT.show)}
        </button>
      </form>
      <ErrorLine problem={problem} />
      {!rows && !problem && <p class="card">{tr(TEXT.loading)}</p>}
      {rows && (
        <>
          <div class="charts">
            <Chart
              title={tr(TEXT.volume)}
              about={tr(TEXT.volumeAbout, { bucket: unit, calls: total("calls"), resolved: total("resolved") })}
              rows={rows.data}
              bucket={rows.bucket}
              series={VOLUME}
              bars
            />
            <Chart title={tr(TEXT.rates)} about={tr(TEXT.ratesAbout, { bucket: unit })} rows={rows.data} bucket={rows.bucket} series={RATE_LINES} />
          </div>
          <div class="card table-box" role="region" aria-labelledby="kpi-table" tabIndex={0}>
            <table class="kpi-table">
              <caption id="kpi-table">{tr(TEXT.table)}</caption>
              <thead>
                <tr>
                  <th scope="col">{tr(TEXT.period)}</th>
                  {COLUMNS.map(([, label]) => (
                    <th scope="col">{tr(label)}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.data.map((row) => (
                  <tr data-bucket={row.bucket_start}>
                    <th scope="row">{period(row, rows.bucket)}</th>
                    {COLUMNS.map(([key, , how]) => (
                      <td data-figure={key}>{show(row[key], how)}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

let loadingPlot: Promise<typeof uPlot> | null = null;
function loadPlot(): Promise<typeof uPlot> {
  loadingPlot ??= Promise.all([import("uplot"), import("uplot/dist/uPlot.min.css")]).then(([m]) => m.default);
  return loadingPlot;
}

function Chart(props: {
  title: string;
  about: string;
  rows: KpiRow[];
  bucket: KpiBucket;
  series: [Figure, Text, string][];
  bars?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [drawn, setDrawn] = useState(false);
  useEffect(() => {
    let plot: uPlot | null = null;
    let observer: ResizeObserver | null = null;
    let gone = false;
    void loadPlot().then((UPlot) => {
      const el = box.current;
      if (gone || !el) return;
      const xs = props.rows.map((r) => new Date(`${r.bucket_start}T00:00:00`).getTime() / 1000);
      const data = [xs, ...props.series.map(([key]) => props.rows.map((r) => (r[key] as number | null) ?? null))];
      const width = () => Math.max(280, el.clientWidth);
      // The buckets themselves are the ticks (thinned to about 8), named as the table names them.
      const step = { day: 1, week: 7, month: 30 }[props.bucket] * 86_400;
      const every = Math.max(1, Math.ceil(xs.length / 8));
      const ticks = xs.filter((_, i) => i % every === 0);
      const names = new Map(props.rows.map((r, i) => [xs[i], period(r, props.bucket)]));
      plot = new UPlot(
        {
          width: width(),
          height: 240,
          legend: { show: false },
          cursor: { show: false },
          scales: {
            x: { time: true, range: () => [xs[0] - step / 2, xs[xs.length - 1] + step / 2] },
            y: props.bars ? { range: (_u, _min, max) => [0, Math.max(4, max)] } : { range: [0, 100] } },
          axes: [
            {
              stroke: "#1a1a1a",
              grid: { stroke: "#e0e0e0" },
              font: "14px sans-serif",
              splits: () => ticks,
              values: (_u, splits) => splits.map((x) => names.get(x) ?? ""),
            },
            { stroke: "#1a1a1a", grid: { stroke: "#e0e0e0" }, font: "14px sans-serif", size: 48 },
          ],
          series: [
            {},
            ...props.series.map(([, label, colour], i) => ({
              label: tr(label),
              stroke: colour,
              width: 2.5,
              spanGaps: true,
              points: { show: true, size: 7, fill: colour },
              ...(props.bars
                ? {
                    fill: colour,
                    paths: UPlot.paths.bars!({ size: [0.35, 40], align: i === 0 ? -1 : 1 }),
                    points: { show: false },
                  }
                : {}),
            })),
          ],
        },
        data as uPlot.AlignedData,
        el,
      );
      observer = new ResizeObserver(() => plot?.setSize({ width: width(), height: 240 }));
      observer.observe(el);
      setDrawn(true);
    });
    return () => {
      gone = true;
      observer?.disconnect();
      plot?.destroy();
    };
  }, [props.rows, props.bucket, props.series, props.bars]);

  return (
    <figure class="card chart" data-chart-drawn={drawn ? "yes" : "no"}>
      <figcaption>
        <strong>{props.title}</strong>
        <span class="chart-legend">
          {props.series.map(([, label, colour]) => (
            <span>
              <span class="swatch" style={{ background: colour }} aria-hidden="true" />
              {tr(label)}
            </span>
          ))}
        </span>
      </figcaption>
      <div ref={box} class="chart-box" role="img" aria-label={props.about} />
    </figure>
  );
}
