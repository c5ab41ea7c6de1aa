// The browser's position while on duty: read once to go on duty, then
// watched and sent (PUT /me/location) at most every 15 s, sooner when the
// member has moved 50 m, never more than once in 5 s.
import type { Point } from "../../gen/types.gen";

const EVERY_MS = 15_000;
const MOVED_M = 50;
const AT_MOST_MS = 5_000;

export function toPoint(position: GeolocationPosition): Point {
  return {
    lat: position.coords.latitude,
    lng: position.coords.longitude,
    accuracy_m: Math.round(position.coords.accuracy * 10) / 10,
  };
}

/** Metres between two points (haversine). */
export function metresBetween(a: Point, b: Point): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLng = (b.lng - a.lng) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}

/** The position now, or a GeolocationPositionError. */
export function currentPosition(): Promise<Point> {
  return new Promise((resolve, reject) => {
    if (!("geolocation" in navigator)) {
      reject({ code: 2 });
      return;
    }
    navigator.geolocation.getCurrentPosition((p) => resolve(toPoint(p)), reject, {
      enableHighAccuracy: true,
      timeout: 20_000,
      maximumAge: 10_000,
    });
  });
}

/** Watch the position and call `send` when it is due; returns the stop. */
export function sharePosition(start: Point | null, send: (point: Point) => void): () => void {
  let last = start;
  let sentAt = Date.now();
  const id = navigator.geolocation.watchPosition(
    (position) => {
      const point = toPoint(position);
      const since = Date.now() - sentAt;
      if (!last || since >= EVERY_MS || (since >= AT_MOST_MS && metresBetween(last, point) >= MOVED_M)) {
        last = point;
        sentAt = Date.now();
        send(point);
      }
    },
    () => undefined, // a lost fix: the last position stands until the next one
    { enableHighAccuracy: true, maximumAge: 5_000 },
  );
  return () => navigator.geolocation.clearWatch(id);
}
