// What every view calls the API's call categories and activity kinds: the
// "five ones" (五个一) beside urgent help (BRIEF.md), and a community event.
// One list, so a resident's chip, a volunteer's offer, the dispatcher's
// queue and the public screen say the same words.
import type { Text } from "./i18n";

export const CATEGORY = {
  urgent: { zh: "紧急求助", en: "Urgent help" },
  visit: { zh: "上门探访", en: "Home visit" },
  affairs: { zh: "邻里议事", en: "Neighbourhood affairs" },
  mediation: { zh: "矛盾调解", en: "Mediation" },
  hardship: { zh: "帮困解难", en: "Help with hardship" },
  safety: { zh: "平安守护", en: "Safety" },
} satisfies Record<string, Text>;

/** Activity kinds: the call categories but urgent, and a community event. */
export const KIND: Record<string, Text> = {
  ...CATEGORY,
  event: { zh: "社区活动", en: "Community event" },
};

const OTHER: Text = { zh: "其他", en: "Other" };

/** The name of a category or kind; an unknown one (a newer API) is "other". */
export function categoryName(value: string | null | undefined): Text {
  return (value && KIND[value]) || OTHER;
}
