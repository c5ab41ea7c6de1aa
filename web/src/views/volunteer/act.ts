// One step a person takes (a button, a form): busy while it runs, and the
// API's problem kept to show when it fails.
import { useState } from "preact/hooks";
import type { Problem } from "../../api";

export function useAct() {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  async function act(step: () => Promise<void>): Promise<void> {
    setBusy(true);
    setProblem(null);
    try {
      await step();
    } catch (error) {
      setProblem(error as Problem);
    } finally {
      setBusy(false);
    }
  }
  return { busy, problem, setProblem, act };
}
