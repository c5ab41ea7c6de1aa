// A short flow through the generated client, as a client author writes it:
// a resident presses, a volunteer takes the offer and resolves the call, a
// teammate declines another without a body, the resident cancels it without
// a body, and an error is told by its `code`. Run by
// tests/clients/test_typescript_client.py against a real server.
import { createClient } from "./generated/client";
import {
  acceptOffer,
  cancelCall,
  createCall,
  createToken,
  declineOffer,
  listOffers,
  reportProgress,
  requestOtp,
} from "./generated/sdk.gen";

const baseUrl = process.env.HULIAN_URL!;
const [lat, lng] = [Number(process.env.HULIAN_LAT), Number(process.env.HULIAN_LNG)];

async function logIn(phone: string) {
  const anonymous = createClient({ baseUrl });
  const sent = await requestOtp({ client: anonymous, body: { phone }, throwOnError: true });
  const code = sent.data.debug_code;
  if (!code) throw new Error("no debug_code outside production?");
  const tokens = await createToken({ client: anonymous, body: { phone, code }, throwOnError: true });
  return createClient({ baseUrl, auth: tokens.data.access_token });
}

async function openOffer(client: ReturnType<typeof createClient>, callId: string) {
  const offers = await listOffers({ client, query: { status: "open" }, throwOnError: true });
  const offer = offers.data.data.find((o) => o.call_id === callId);
  if (!offer) throw new Error("no open offer for the call");
  return offer;
}

async function main(): Promise<void> {
  const resident = await logIn(process.env.HULIAN_RESIDENT!);
  const volunteer = await logIn(process.env.HULIAN_VOLUNTEER!);
  const teammate = await logIn(process.env.HULIAN_TEAMMATE!);

  const call = (await createCall({ client: resident, body: { location: { lat, lng } }, throwOnError: true })).data;
  const offer = await openOffer(volunteer, call.id);
  const taken = (await acceptOffer({ client: volunteer, path: { offer_id: offer.id }, throwOnError: true })).data;
  const steps: string[] = [taken.status];
  for (const status of ["en_route", "on_site", "resolved"] as const) {
    const moved = await reportProgress({
      client: volunteer,
      path: { call_id: call.id },
      body: { status },
      throwOnError: true,
    });
    steps.push(moved.data.status);
  }

  const second = (await createCall({ client: resident, body: { location: { lat, lng } }, throwOnError: true })).data;
  const other = await openOffer(teammate, second.id);
  const declined = (await declineOffer({ client: teammate, path: { offer_id: other.id }, throwOnError: true })).data;
  const cancelled = (await cancelCall({ client: resident, path: { call_id: second.id }, throwOnError: true })).data;

  const outside = await createCall({ client: resident, body: { location: { lat: 39.9, lng: 116.4 } } });
  const code = outside.error && "code" in outside.error ? outside.error.code : null;

  console.log(JSON.stringify({ steps, declined: declined.id === other.id, cancelled: cancelled.status, code }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
