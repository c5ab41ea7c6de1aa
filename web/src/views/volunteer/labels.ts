// Names of the API's enums as a volunteer reads them.
import type { Text } from "../../i18n";

export { KIND } from "../../names";

export const TAG: Record<string, Text> = {
  elderly: { zh: "高龄老人", en: "Elderly" },
  sick: { zh: "患病", en: "Ill" },
  disabled: { zh: "残疾", en: "Disabled" },
  low_income: { zh: "低收入", en: "Low income" },
  mental_health: { zh: "心理关怀", en: "Mental health" },
};

export const OTHER: Text = { zh: "其他", en: "Other" };

export function label(names: Record<string, Text>, value: string): Text {
  return names[value] ?? OTHER;
}
