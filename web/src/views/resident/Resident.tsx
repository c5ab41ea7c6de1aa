import { Frame } from "../../ui";

export default function Resident() {
  return (
    <Frame view="resident">
      <p>…</p>
    </Frame>
  );
}
