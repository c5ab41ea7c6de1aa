// The app's entry: a hash router over four views, each loaded when first
// opened (the resident's first load stays small: docs/web.md), and the
// service worker that makes it installable and shows push.
import { render } from "preact";
import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";
import { hasRole, session } from "./api";
import "./live";
import { useSignal } from "./state";
import "./styles.css";

type Loader = () => Promise<{ default: ComponentType<{ args: string[] }> }>;

const VIEWS: Record<string, Loader> = {
  resident: () => import("./views/resident/Resident"),
  volunteer: () => import("./views/volunteer/Volunteer"),
  dispatcher: () => import("./views/dispatcher/Dispatcher"),
  screen: () => import("./views/screen/Screen"),
};

function route(): string[] {
  return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

/** Where a signed-in person lands when the address names no view. */
function home(): string {
  if (hasRole("dispatcher") || hasRole("admin")) return "dispatcher";
  if (hasRole("volunteer")) return "volunteer";
  return "resident";
}

function App() {
  const [parts, setParts] = useState(route());
  const signedIn = useSignal(session);
  const [view, setView] = useState<{ name: string; Component: ComponentType<{ args: string[] }> } | null>(null);

  useEffect(() => {
    const onHash = () => setParts(route());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  const name = parts[0] && VIEWS[parts[0]] ? parts[0] : home();
  useEffect(() => {
    let current = true;
    void VIEWS[name]().then((module) => {
      if (current) setView({ name, Component: module.default });
    });
    return () => {
      current = false;
    };
  }, [name, signedIn?.user.id]);

  if (!view || view.name !== name) return <p class="loading" aria-busy="true">…</p>;
  return <view.Component args={parts.slice(1)} />;
}

render(<App />, document.getElementById("app")!);

if ("serviceWorker" in navigator && location.protocol !== "file:") {
  void navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`, {
    scope: import.meta.env.BASE_URL,
  });
}
