import { Frame } from "../../ui";

export default function Volunteer() {
  return (
    <Frame view="volunteer">
      <p>…</p>
    </Frame>
  );
}
