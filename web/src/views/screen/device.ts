// What a screen device keeps: its registration (the screen's id and key,
// from POST /admin/screens, shown once to the admin) and its options. The
// key arrives in the address once (#/screen/<area>/<screen>#key=…) or by the
// setup form, is kept in localStorage and taken out of the address at once.
const KEY_PREFIX = "hulian.screen.key.";
const BACK_OPTION = "hulian.screen.back";

/** The stored key of this screen, or null. */
export function storedKey(screenId: string): string | null {
  try {
    return localStorage.getItem(KEY_PREFIX + screenId);
  } catch {
    return null;
  }
}

export function storeKey(screenId: string, key: string): void {
  localStorage.setItem(KEY_PREFIX + screenId, key.trim());
}

export function forgetKey(screenId: string): void {
  localStorage.removeItem(KEY_PREFIX + screenId);
}

/**
 * The screen's id from the route's second part, taking a `#key=…` that came
 * with it into storage and out of the address bar (and history).
 */
export function adoptRoute(areaId: string, part: string | undefined): void {
  if (!part) return;
  const [screenId, fragment] = part.split("#", 2);
  const key = fragment?.startsWith("key=") ? decodeURIComponent(fragment.slice(4)) : "";
  if (key) storeKey(screenId, key);
  if (fragment !== undefined) {
    history.replaceState(null, "", `${location.pathname}#/screen/${areaId}/${screenId}`);
  }
}

/** Seconds the 'help is coming' screen stays before the figures return. */
export function backSeconds(): number {
  const chosen = Number(localStorage.getItem(BACK_OPTION));
  return Number.isFinite(chosen) && chosen > 0 ? chosen : 60;
}
