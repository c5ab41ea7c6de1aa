"""Words the demo district is named with: invented, Chinese-style, fictional.

Nothing here names a real person or a real building; only the street and its
six communities carry the names of the real Guangming Street.
"""

from __future__ import annotations

from itertools import combinations

STREET_NAME = "光明街道"
STREET_CODE = "GM"

# The six communities of Guangming Street.
COMMUNITY_NAMES: tuple[str, ...] = ("光明", "东周", "翠湖", "碧眼", "白花", "迳口")

TEAM_SUFFIX = "红小二党员服务队"

# The "five ones" (五个一) a team offers; a team's service_content lists some of them.
FIVE_ONES: tuple[str, ...] = (
    "走访邻里",
    "商议邻里事务",
    "调解矛盾纠纷",
    "帮扶困难群众",
    "守护邻里平安",
)


def _service_contents() -> tuple[str, ...]:
    """Every choice of two to five of the "five ones", in their usual order."""
    texts: list[str] = []
    for size in range(2, len(FIVE_ONES) + 1):
        for chosen in combinations(FIVE_ONES, size):
            texts.append("五个一服务：" + "、".join(chosen))
    return tuple(texts)


SERVICE_CONTENTS: tuple[str, ...] = _service_contents()

# Housing estates: a head, a middle and a kind make names such as 锦华苑 or 碧水花园.
ESTATE_HEADS: tuple[str, ...] = tuple(
    "锦碧翠华金玉龙凤祥瑞嘉和安康福丽雅逸景泰宏兴德盛新东南西北光明凯悦海星"
)
ESTATE_MIDDLES: tuple[str, ...] = tuple("华水湖山园林庭城泉岭苑峰溪湾桂荷兰竹松柏云")
ESTATE_KINDS: tuple[str, ...] = (
    "苑",
    "园",
    "花园",
    "小区",
    "家园",
    "新村",
    "公寓",
    "雅居",
    "名苑",
    "村",
)

# Common surnames and given-name characters.
SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
    "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
)
GIVEN_CHARS: tuple[str, ...] = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建国红文斌宇浩凯健俊帆帅旭宁欣怡"
    "婷雪琳晶颖佳慧嘉志海波松林峰秋春梅丹玲燕云霖振荣德亮成昊然子轩梓涵诗雨晨阳思博"
)
