// Names of the API's enums as a volunteer reads them.
import type { Text } from "../../i18n";

export const KIND: Record<string, Text> = {
  urgent: { zh: "紧急求助", en: "Urgent help" },
  visit: { zh: "上门探访", en: "Home visit" },
  affairs: { zh: "代办事务", en: "Errands" },
  mediation: { zh: "矛盾调解", en: "Mediation" },
  hardship: { zh: "帮困解难", en: "Hardship help" },
  safety: { zh: "安全隐患", en: "Safety" },
  event: { zh: "社区活动", en: "Community event" },
};

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
