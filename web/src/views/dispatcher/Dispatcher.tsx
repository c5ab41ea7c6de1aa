import { Frame } from "../../ui";

export default function Dispatcher() {
  return (
    <Frame view="dispatcher">
      <p>…</p>
    </Frame>
  );
}
