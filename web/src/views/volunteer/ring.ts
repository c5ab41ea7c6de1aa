// A new offer rings: a short tone (WebAudio: no sound file; a browser may
// block it before the person has touched the page, which is fine) and a
// notification while the app is open, if the person allowed them. The
// notification says only the kind of help and how far: no personal data.

let audio: AudioContext | null = null;

function tone(): void {
  try {
    audio ??= new AudioContext();
    const now = audio.currentTime;
    for (const [start, pitch] of [
      [0, 880],
      [0.25, 660],
      [0.5, 880],
    ] as const) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = pitch;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.4, now + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.24);
    }
  } catch {
    // No audio here: the card and the notification still ring.
  }
}

/** Whether notifications may be asked for (the button shows only then). */
export function canAskNotifications(): boolean {
  return "Notification" in window && Notification.permission === "default";
}

export async function askNotifications(): Promise<void> {
  if ("Notification" in window) await Notification.requestPermission();
  // The first touch also unlocks the tone.
  tone();
}

export function ring(title: string, body: string, tag: string): void {
  tone();
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const options = { body, tag, icon: `${import.meta.env.BASE_URL}icon-192.png` };
  try {
    new Notification(title, options);
  } catch {
    // Android's Chrome allows notifications only through the service worker.
    void navigator.serviceWorker?.ready.then((registration) => registration.showNotification(title, options));
  }
}
