// The resident's view (docs/web.md): one huge button to call a party
// member, then the call's live timeline. A person with an open call opens
// on that call.
import { useEffect, useState } from "preact/hooks";
import { api, must, session } from "../../api";
import type { Problem } from "../../api";
import { listCalls } from "../../gen/sdk.gen";
import type { CallPublic, CallStatus } from "../../gen/types.gen";
import { useLang } from "../../i18n";
import { useSignal } from "../../state";
import { ErrorLine, Frame } from "../../ui";
import CallView from "./CallView";
import Press from "./Press";
import "./resident.css";

const CLOSED = new Set<CallStatus>(["resolved", "cancelled"]);

/** The person's newest open call of their own (not one they respond to). */
async function openCall(me: string): Promise<CallPublic | null> {
  const page = await must(listCalls({ client: api, query: { limit: 20 } }));
  return page.data.find((call) => !CLOSED.has(call.status) && call.responder?.id !== me) ?? null;
}

function Home() {
  useLang();
  const me = useSignal(session)?.user.id ?? "";
  const [call, setCall] = useState<CallPublic | null | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    openCall(me)
      .then(setCall)
      .catch((error: Problem) => {
        setProblem(error);
        setCall(null);
      });
  }, [me]);
  if (call === undefined) return <p class="loading" aria-busy="true">…</p>;
  return (
    <div class="resident">
      <ErrorLine problem={problem} />
      {call ? <CallView key={call.id} initial={call} onDone={() => setCall(null)} /> : <Press onCall={setCall} />}
    </div>
  );
}

export default function Resident() {
  return (
    <Frame view="resident">
      <Home />
    </Frame>
  );
}
