// Flow Playground's service worker: after one visit the page works without a network.
// Install: the page and every file it names (the wasm and its JavaScript glue).
// Fetch: the network first, so a new build shows up as soon as the server answers;
// the stored copy when the network fails.
const CACHE = "flow-playground-v1";

async function precache() {
  const cache = await caches.open(CACHE);
  const page = await fetch("./", { cache: "no-store" });
  const html = await page.clone().text();
  await cache.put("./", page);
  const scope = self.registration.scope;
  const files = new Set();
  for (const m of html.matchAll(/(?:href|src)="([^"#]+)"/g)) {
    const url = new URL(m[1], scope);
    if (url.origin === self.location.origin) {
      files.add(url.href);
    }
  }
  await cache.addAll([...files]);
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) {
    return;
  }
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(async () => {
        const hit = await caches.match(request, { ignoreSearch: true });
        if (hit) {
          return hit;
        }
        if (request.mode === "navigate") {
          const page = await caches.match("./");
          if (page) {
            return page;
          }
        }
        return Response.error();
      }),
  );
});
