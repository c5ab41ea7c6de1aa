export default function Screen(props: { args: string[] }) {
  return <main class="screen">{props.args[0] ?? ""}</main>;
}
