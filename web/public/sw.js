// The app's service worker (docs/web.md): the shell is kept for when the
// network is away (the API never is cached), and a push the platform
// delivers is shown as a notification that opens the volunteer view.
const SHELL = "hulian-shell-v1";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(["/app/", "/app/manifest.webmanifest", "/app/icon.svg"])));
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k)))).then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/app/")) return;
  if (url.pathname.startsWith("/app/assets/")) {
    // Hashed names: a cached copy is always the right one.
    event.respondWith(
      caches.match(event.request).then(
        (hit) =>
          hit ||
          fetch(event.request).then((answer) => {
            if (answer.ok) {
              const copy = answer.clone();
              void caches.open(SHELL).then((cache) => cache.put(event.request, copy));
            }
            return answer;
          }),
      ),
    );
    return;
  }
  // The page itself: the network first, the kept shell when offline.
  event.respondWith(fetch(event.request).catch(() => caches.match(event.request).then((hit) => hit || caches.match("/app/"))));
});

self.addEventListener("push", (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = {};
  }
  // Push payloads carry no personal data (docs/privacy.md): a kind and ids.
  const notification = payload.notification || {};
  const title = notification.title || "党群户联网";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: notification.body || "有新的呼叫 · A new call",
      icon: "/app/icon.svg",
      tag: (payload.data && payload.data.call_id) || "hulian",
      data: { url: "/app/#/volunteer" },
      requireInteraction: true,
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = (event.notification.data && event.notification.data.url) || "/app/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const w of windows) if (w.url.includes("/app/")) return w.focus().then(() => w.navigate(target));
      return self.clients.openWindow(target);
    }),
  );
});
