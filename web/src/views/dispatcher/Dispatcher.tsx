// The dispatch platform (统一分拨): the live map of the dispatcher's area,
// the escalated queue with assign-to-team, the KPIs, the month's quota,
// stars and report. Each part is a hash: #/dispatcher/<part>.
import { useEffect } from "preact/hooks";
import { session } from "../../api";
import { tr, useLang } from "../../i18n";
import type { Text } from "../../i18n";
import { useSignal } from "../../state";
import { ErrorLine, Frame } from "../../ui";
import Kpis from "./Kpis";
import LiveMap from "./LiveMap";
import Month from "./Month";
import Queue from "./Queue";
import { follow, problem, queue } from "./store";
import "./dispatcher.css";

const TEXT = {
  parts: { zh: "调度功能", en: "Dispatch tools" },
  map: { zh: "实时地图", en: "Live map" },
  queue: { zh: "待派单", en: "Queue" },
  kpis: { zh: "统计指标", en: "KPIs" },
  month: { zh: "月度考核", en: "This month" },
  notStaff: {
    zh: "调度平台只对社区、街道的调度员开放。",
    en: "The dispatch platform is for the dispatchers of a community or street.",
  },
  areaOf: { zh: "{name} · {level}调度", en: "{name} · {level} dispatch" },
  community: { zh: "社区", en: "community" },
  street: { zh: "街道", en: "street" },
  district: { zh: "全辖区", en: "whole district" },
} satisfies Record<string, Text>;

const PARTS = ["map", "queue", "kpis", "month"] as const;
type Part = (typeof PARTS)[number];

export default function Dispatcher(props: { args: string[] }) {
  useLang();
  const current = useSignal(session);
  const roles = current?.user.roles ?? [];
  const staff = roles.includes("dispatcher") || roles.includes("admin");
  const part: Part = (PARTS as readonly string[]).includes(props.args[0]) ? (props.args[0] as Part) : "map";
  return (
    <Frame view="dispatcher">
      {staff ? <Platform part={part} /> : <p class="card">{tr(TEXT.notStaff)}</p>}
    </Frame>
  );
}

function Platform(props: { part: Part }) {
  useEffect(() => follow(), []);
  const waiting = useSignal(queue);
  const failed = useSignal(problem);
  const area = useSignal(session)?.user.dispatcher_area;
  return (
    <div class="dispatch">
      <div class="dispatch-head">
        <h2 class="dispatch-area">
          {area
            ? tr(TEXT.areaOf, { name: area.name, level: tr(area.level === "street" ? TEXT.street : TEXT.community) })
            : tr(TEXT.district)}
        </h2>
        <nav class="dispatch-parts" aria-label={tr(TEXT.parts)}>
          {PARTS.map((name) => (
            <a
              href={`#/dispatcher/${name}`}
              class="part-tab"
              aria-current={name === props.part ? "page" : undefined}
              data-part={name}
            >
              {tr(TEXT[name])}
              {name === "queue" && waiting && waiting.length > 0 && (
                <span class="count" data-queue-count={waiting.length}>
                  {waiting.length}
                </span>
              )}
            </a>
          ))}
        </nav>
      </div>
      <ErrorLine problem={failed} />
      {props.part === "map" && <LiveMap />}
      {props.part === "queue" && <Queue />}
      {props.part === "kpis" && <Kpis />}
      {props.part === "month" && <Month />}
    </div>
  );
}
