// The one way the app talks to the API: the generated client (src/gen, from
// openapi/openapi.json), a session kept in localStorage and refreshed once
// on a 401, and errors as RFC 9457 problems with their stable `code`.
import { createClient } from "./gen/client";
import type { TokenPair, User } from "./gen/types.gen";
import { refreshToken } from "./gen/sdk.gen";
import { signal } from "./state";

const STORAGE_KEY = "hulian.session";

export interface Session {
  access: string;
  refresh: string;
  expiresAt: number; // ms since the epoch
  user: User;
}

function load(): Session | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

/** The signed-in person, or null; every view re-renders when it changes. */
export const session = signal<Session | null>(load());

export function saveSession(pair: TokenPair): Session {
  const next: Session = {
    access: pair.access_token,
    refresh: pair.refresh_token,
    expiresAt: Date.now() + pair.expires_in * 1000,
    user: pair.user,
  };
  localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  session.set(next);
  return next;
}

export function setUser(user: User): void {
  const current = session.get();
  if (!current) return;
  const next = { ...current, user };
  localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  session.set(next);
}

export function clearSession(): void {
  localStorage.removeItem(STORAGE_KEY);
  session.set(null);
}

export function hasRole(role: string): boolean {
  return session.get()?.user.roles.includes(role as never) ?? false;
}

const baseUrl = location.origin;

/** Anonymous calls (logging in, public screens). */
export const anonymous = createClient({ baseUrl });

let refreshing: Promise<boolean> | null = null;

/** Trade the refresh token for a new pair, once at a time. False: signed out. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    const current = session.get();
    if (!current) return false;
    const answer = await refreshToken({
      client: anonymous,
      body: { refresh_token: current.refresh },
    });
    if (answer.data) {
      saveSession(answer.data);
      return true;
    }
    if (answer.response && answer.response.status === 401) clearSession();
    return false;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** Calls made as the signed-in person; a 401 refreshes the token and retries once. */
export const api = createClient({
  baseUrl,
  auth: () => session.get()?.access,
  fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const retry = request.clone();
    const first = await fetch(request);
    if (first.status !== 401 || !session.get()) return first;
    if (!(await refreshSession())) return first;
    retry.headers.set("Authorization", `Bearer ${session.get()!.access}`);
    return fetch(retry);
  },
});

/** An RFC 9457 problem as the API answers it. */
export interface Problem {
  status: number;
  code: string;
  title: string;
  detail?: string;
}

export function asProblem(error: unknown, response?: Response): Problem {
  const body = (error ?? {}) as Partial<Problem>;
  return {
    status: body.status ?? response?.status ?? 0,
    code: body.code ?? (response ? `http_${response.status}` : "network"),
    title: body.title ?? "",
    detail: body.detail,
  };
}

/**
 * Unwrap a generated call's answer: its data, or a thrown Problem.
 * `await must(createCall({ client: api, body }))`.
 */
export async function must<T>(
  pending: Promise<{ data?: T; error?: unknown; response?: Response }>,
): Promise<T> {
  let answer: { data?: T; error?: unknown; response?: Response };
  try {
    answer = await pending;
  } catch {
    throw { status: 0, code: "network", title: "" } satisfies Problem;
  }
  if (answer.error !== undefined || !answer.response?.ok) {
    throw asProblem(answer.error, answer.response);
  }
  return answer.data as T;
}
