"""The demo catalogue: a few hundred everyday grocery products, the same on every run.

Barcodes are made-up EAN-13 codes in the 690–699 (China) range with correct check digits;
brands are real names a shopper recognises, specs and prices are plausible, not quoted.
Seeding is idempotent: a product whose barcode exists is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog.barcodes import with_check_digit
from selfmart.catalog.pinyin import search_keys
from selfmart.models import Category, Product, ProductBarcode, ProductTag, Store, StoreProduct, Tag

CATEGORY_TREE: dict[str, list[str]] = {
    "饮料": ["碳酸饮料", "饮用水", "果汁茶饮", "功能饮料", "咖啡"],
    "乳品": ["纯牛奶", "酸奶", "乳饮料"],
    "零食": ["膨化食品", "饼干糕点", "坚果炒货", "糖果巧克力", "肉干肉脯"],
    "粮油": ["方便面", "米面杂粮", "食用油", "调味品"],
    "日化": ["洗发护发", "口腔护理", "纸品湿巾", "衣物清洁"],
    "酒类": ["啤酒", "白酒"],
    "速食冻品": ["速冻水饺", "汤圆", "火锅丸料", "自热食品"],
    "生鲜": ["鸡蛋", "水果"],
}

TAGS = ["热销", "新品", "夏季", "早餐", "夜宵", "进口", "临期特价"]


@dataclass(frozen=True)
class Line:
    """A product line: one brand and name sold in several specs at several prices."""

    category: str  # "饮料/碳酸饮料"
    brand: str
    name: str
    unit: str
    variants: Sequence[tuple[str, int]]  # (spec, retail price in fen)
    shelf_life_days: int | None = None
    tags: Sequence[str] = ()


LINES: list[Line] = [
    # 饮料
    Line(
        "饮料/碳酸饮料",
        "可口可乐",
        "可口可乐",
        "瓶",
        [("330ml", 250), ("500ml", 350), ("1.25L", 550), ("2L", 750)],
        365,
        ["热销"],
    ),
    Line("饮料/碳酸饮料", "可口可乐", "零度可口可乐", "罐", [("330ml", 300), ("500ml", 380)], 365),
    Line(
        "饮料/碳酸饮料",
        "可口可乐",
        "雪碧",
        "瓶",
        [("330ml", 250), ("500ml", 350), ("2L", 750)],
        365,
        ["夏季"],
    ),
    Line("饮料/碳酸饮料", "可口可乐", "芬达 橙味", "瓶", [("500ml", 350), ("2L", 750)], 365),
    Line(
        "饮料/碳酸饮料",
        "百事",
        "百事可乐",
        "瓶",
        [("330ml", 250), ("500ml", 350), ("2L", 700)],
        365,
    ),
    Line("饮料/碳酸饮料", "百事", "七喜", "瓶", [("500ml", 350)], 365),
    Line(
        "饮料/碳酸饮料",
        "元气森林",
        "元气森林苏打气泡水 白桃味",
        "瓶",
        [("480ml", 550)],
        270,
        ["新品"],
    ),
    Line("饮料/碳酸饮料", "元气森林", "元气森林苏打气泡水 青瓜味", "瓶", [("480ml", 550)], 270),
    Line(
        "饮料/饮用水",
        "农夫山泉",
        "农夫山泉饮用天然水",
        "瓶",
        [("380ml", 150), ("550ml", 200), ("1.5L", 400), ("4L", 800)],
        730,
        ["热销"],
    ),
    Line("饮料/饮用水", "怡宝", "怡宝纯净水", "瓶", [("555ml", 200), ("1.555L", 400)], 730),
    Line("饮料/饮用水", "百岁山", "百岁山天然矿泉水", "瓶", [("348ml", 200), ("570ml", 300)], 730),
    Line("饮料/饮用水", "景田", "景田纯净水", "瓶", [("560ml", 200)], 730),
    Line("饮料/饮用水", "农夫山泉", "东方树叶 茉莉花茶", "瓶", [("500ml", 550)], 365),
    Line(
        "饮料/果汁茶饮",
        "康师傅",
        "康师傅冰红茶",
        "瓶",
        [("500ml", 350), ("1L", 550)],
        365,
        ["夏季"],
    ),
    Line("饮料/果汁茶饮", "康师傅", "康师傅绿茶", "瓶", [("500ml", 350)], 365),
    Line("饮料/果汁茶饮", "康师傅", "康师傅茉莉蜜茶", "瓶", [("500ml", 350)], 365),
    Line("饮料/果汁茶饮", "统一", "统一冰红茶", "瓶", [("500ml", 350)], 365),
    Line("饮料/果汁茶饮", "统一", "统一鲜橙多", "瓶", [("450ml", 350), ("1.5L", 700)], 365),
    Line("饮料/果汁茶饮", "统一", "小茗同学 冷泡绿茶", "瓶", [("480ml", 500)], 365),
    Line("饮料/果汁茶饮", "汇源", "汇源100%橙汁", "盒", [("1L", 1290)], 365),
    Line("饮料/果汁茶饮", "王老吉", "王老吉凉茶", "罐", [("310ml", 400)], 540, ["热销"]),
    Line("饮料/果汁茶饮", "加多宝", "加多宝凉茶", "罐", [("310ml", 400)], 540),
    Line("饮料/果汁茶饮", "维他", "维他柠檬茶", "盒", [("250ml", 350)], 365),
    Line("饮料/功能饮料", "红牛", "红牛维生素功能饮料", "罐", [("250ml", 600)], 540, ["夜宵"]),
    Line("饮料/功能饮料", "东鹏", "东鹏特饮", "瓶", [("250ml", 500), ("500ml", 600)], 365),
    Line("饮料/功能饮料", "脉动", "脉动 青柠口味", "瓶", [("600ml", 500)], 365),
    Line("饮料/功能饮料", "宝矿力水特", "宝矿力水特", "瓶", [("500ml", 550)], 365),
    Line("饮料/功能饮料", "外星人", "外星人电解质水", "瓶", [("500ml", 600)], 365, ["新品"]),
    Line("饮料/咖啡", "雀巢", "雀巢咖啡 丝滑拿铁", "瓶", [("268ml", 600)], 270, ["早餐"]),
    Line(
        "饮料/咖啡",
        "雀巢",
        "雀巢1+2原味速溶咖啡",
        "盒",
        [("15g*7条", 1290), ("15g*30条", 3990)],
        540,
    ),
    Line("饮料/咖啡", "星巴克", "星巴克星冰乐 摩卡", "瓶", [("281ml", 1200)], 270, ["进口"]),
    Line(
        "饮料/咖啡", "三顿半", "三顿半超即溶精品咖啡 3号", "盒", [("3g*8颗", 4990)], 540, ["新品"]
    ),
    # 乳品
    Line(
        "乳品/纯牛奶",
        "蒙牛",
        "蒙牛纯牛奶",
        "盒",
        [("250ml", 350), ("250ml*12盒", 3990)],
        180,
        ["早餐"],
    ),
    Line("乳品/纯牛奶", "蒙牛", "特仑苏纯牛奶", "盒", [("250ml", 550), ("250ml*12盒", 6390)], 180),
    Line(
        "乳品/纯牛奶",
        "伊利",
        "伊利纯牛奶",
        "盒",
        [("250ml", 350), ("250ml*16盒", 4990)],
        180,
        ["早餐"],
    ),
    Line("乳品/纯牛奶", "伊利", "金典有机纯牛奶", "盒", [("250ml", 650)], 180),
    Line("乳品/纯牛奶", "光明", "光明优倍鲜牛奶", "瓶", [("950ml", 1590)], 15),
    Line("乳品/酸奶", "安慕希", "安慕希希腊风味酸奶 原味", "盒", [("205g", 550)], 150),
    Line("乳品/酸奶", "纯甄", "纯甄风味酸牛奶", "盒", [("200g", 500)], 150),
    Line("乳品/酸奶", "简爱", "简爱裸酸奶", "杯", [("135g", 890)], 21, ["新品"]),
    Line("乳品/酸奶", "光明", "莫斯利安常温酸奶", "盒", [("200g", 550)], 150),
    Line(
        "乳品/乳饮料", "养乐多", "养乐多活菌型乳酸菌饮品", "排", [("100ml*5瓶", 1150)], 30, ["热销"]
    ),
    Line("乳品/乳饮料", "娃哈哈", "娃哈哈AD钙奶", "排", [("220g*4瓶", 990)], 270),
    Line("乳品/乳饮料", "旺旺", "旺仔牛奶", "罐", [("245ml", 500)], 365),
    Line("乳品/乳饮料", "伊利", "优酸乳 原味", "盒", [("250ml", 300)], 180),
    # 零食
    Line(
        "零食/膨化食品",
        "乐事",
        "乐事薯片 原味",
        "袋",
        [("40g", 650), ("75g", 850), ("135g", 1290)],
        270,
        ["热销"],
    ),
    Line("零食/膨化食品", "乐事", "乐事薯片 黄瓜味", "袋", [("40g", 650), ("75g", 850)], 270),
    Line("零食/膨化食品", "乐事", "乐事薯片 青柠味", "袋", [("75g", 850)], 270, ["夏季"]),
    Line("零食/膨化食品", "可比克", "可比克薯片 番茄味", "罐", [("105g", 790)], 270),
    Line("零食/膨化食品", "上好佳", "上好佳鲜虾片", "袋", [("40g", 450)], 270),
    Line("零食/膨化食品", "旺旺", "旺旺仙贝", "袋", [("52g", 550), ("400g", 2590)], 270),
    Line("零食/膨化食品", "旺旺", "旺旺雪饼", "袋", [("84g", 650)], 270),
    Line("零食/膨化食品", "好丽友", "好丽友呀!土豆 番茄酱味", "盒", [("70g", 690)], 270),
    Line(
        "零食/饼干糕点",
        "奥利奥",
        "奥利奥夹心饼干 原味",
        "盒",
        [("97g", 690), ("388g", 1990)],
        365,
        ["热销"],
    ),
    Line(
        "零食/饼干糕点", "好丽友", "好丽友派 巧克力味", "盒", [("6枚", 1390), ("12枚", 2590)], 270
    ),
    Line(
        "零食/饼干糕点", "达利园", "达利园法式软面包 香奶味", "袋", [("200g", 990)], 150, ["早餐"]
    ),
    Line("零食/饼干糕点", "达利园", "达利园蛋黄派", "盒", [("250g", 1290)], 180),
    Line("零食/饼干糕点", "康师傅", "3+2苏打夹心饼干 柠檬味", "袋", [("125g", 590)], 365),
    Line("零食/饼干糕点", "嘉士利", "嘉士利早餐饼", "袋", [("200g", 790)], 365, ["早餐"]),
    Line("零食/饼干糕点", "盼盼", "盼盼法式小面包", "袋", [("200g", 990)], 150),
    Line("零食/坚果炒货", "洽洽", "洽洽香瓜子", "袋", [("160g", 750), ("308g", 1290)], 240),
    Line("零食/坚果炒货", "洽洽", "洽洽每日坚果", "盒", [("25g*7袋", 3990)], 240, ["早餐"]),
    Line("零食/坚果炒货", "三只松鼠", "三只松鼠夏威夷果", "袋", [("160g", 2590)], 240),
    Line("零食/坚果炒货", "三只松鼠", "三只松鼠碧根果", "袋", [("120g", 2390)], 240),
    Line("零食/坚果炒货", "良品铺子", "良品铺子开心果", "袋", [("120g", 2690)], 240),
    Line("零食/坚果炒货", "百草味", "百草味腰果", "袋", [("150g", 2590)], 240),
    Line("零食/糖果巧克力", "德芙", "德芙丝滑牛奶巧克力", "块", [("43g", 990), ("80g", 1690)], 365),
    Line("零食/糖果巧克力", "士力架", "士力架花生夹心巧克力", "条", [("51g", 550)], 365, ["夜宵"]),
    Line(
        "零食/糖果巧克力",
        "费列罗",
        "费列罗榛果威化巧克力",
        "盒",
        [("3粒", 1290), ("16粒", 5990)],
        365,
        ["进口"],
    ),
    Line("零食/糖果巧克力", "大白兔", "大白兔奶糖", "袋", [("114g", 1290)], 540),
    Line("零食/糖果巧克力", "绿箭", "绿箭口香糖 薄荷味", "瓶", [("40粒", 1190)], 540),
    Line("零食/糖果巧克力", "益达", "益达无糖口香糖 西瓜味", "瓶", [("40粒", 1190)], 540),
    Line("零食/糖果巧克力", "阿尔卑斯", "阿尔卑斯棒棒糖", "支", [("10g", 100)], 540),
    Line(
        "零食/肉干肉脯",
        "卫龙",
        "卫龙大面筋辣条",
        "袋",
        [("65g", 350), ("106g", 550)],
        180,
        ["热销"],
    ),
    Line("零食/肉干肉脯", "卫龙", "卫龙魔芋爽 香辣味", "袋", [("180g", 1290)], 180),
    Line(
        "零食/肉干肉脯",
        "双汇",
        "双汇王中王火腿肠",
        "支",
        [("40g", 250), ("40g*10支", 1990)],
        180,
        ["夜宵"],
    ),
    Line("零食/肉干肉脯", "科尔沁", "科尔沁手撕风干牛肉", "袋", [("100g", 3990)], 180),
    Line("零食/肉干肉脯", "周黑鸭", "周黑鸭卤鸭脖", "盒", [("160g", 2990)], 30),
    Line("零食/肉干肉脯", "无穷", "无穷盐焗鸡翅", "袋", [("2只装", 1290)], 180),
    # 粮油
    Line(
        "粮油/方便面",
        "康师傅",
        "康师傅红烧牛肉面",
        "袋",
        [("105g", 350), ("5连包", 1590)],
        180,
        ["夜宵", "热销"],
    ),
    Line("粮油/方便面", "康师傅", "康师傅红烧牛肉面 桶装", "桶", [("110g", 500)], 180, ["夜宵"]),
    Line("粮油/方便面", "康师傅", "康师傅老坛酸菜牛肉面", "袋", [("114g", 350)], 180),
    Line("粮油/方便面", "统一", "统一老坛酸菜牛肉面", "桶", [("121g", 500)], 180),
    Line("粮油/方便面", "统一", "汤达人日式豚骨拉面", "桶", [("130g", 750)], 180),
    Line("粮油/方便面", "今麦郎", "今麦郎一桶半 红烧牛肉面", "桶", [("140g", 500)], 180),
    Line("粮油/方便面", "白象", "白象汤好喝 老母鸡汤面", "桶", [("117g", 550)], 180, ["新品"]),
    Line("粮油/方便面", "农心", "农心辛拉面", "袋", [("120g", 650)], 240, ["进口"]),
    Line("粮油/方便面", "日清", "合味道海鲜风味杯面", "杯", [("84g", 650)], 180),
    Line("粮油/方便面", "螺霸王", "螺霸王螺蛳粉", "袋", [("330g", 1390)], 180),
    Line("粮油/米面杂粮", "金龙鱼", "金龙鱼东北大米", "袋", [("2.5kg", 2990), ("5kg", 5490)], 365),
    Line("粮油/米面杂粮", "福临门", "福临门五常大米", "袋", [("5kg", 7990)], 365),
    Line("粮油/米面杂粮", "陈克明", "陈克明鸡蛋挂面", "把", [("500g", 690)], 540),
    Line("粮油/米面杂粮", "五谷磨房", "五谷磨房黑芝麻糊", "袋", [("600g", 3990)], 365, ["早餐"]),
    Line("粮油/米面杂粮", "桂格", "桂格即食燕麦片", "袋", [("1000g", 2990)], 540, ["早餐"]),
    Line(
        "粮油/食用油", "金龙鱼", "金龙鱼黄金比例调和油", "桶", [("1.8L", 2990), ("5L", 6990)], 540
    ),
    Line(
        "粮油/食用油", "鲁花", "鲁花5S压榨一级花生油", "桶", [("900ml", 3290), ("5L", 15990)], 540
    ),
    Line("粮油/食用油", "福临门", "福临门非转基因大豆油", "桶", [("5L", 5990)], 540),
    Line("粮油/调味品", "海天", "海天味极鲜酱油", "瓶", [("380ml", 890), ("750ml", 1490)], 720),
    Line("粮油/调味品", "海天", "海天上等蚝油", "瓶", [("520g", 1190)], 720),
    Line("粮油/调味品", "李锦记", "李锦记薄盐生抽", "瓶", [("500ml", 1290)], 720),
    Line("粮油/调味品", "老干妈", "老干妈风味豆豉油制辣椒", "瓶", [("280g", 1090)], 540, ["热销"]),
    Line("粮油/调味品", "恒顺", "恒顺镇江香醋", "瓶", [("500ml", 790)], 720),
    Line("粮油/调味品", "太太乐", "太太乐鸡精", "袋", [("200g", 990)], 540),
    Line("粮油/调味品", "中盐", "中盐加碘精制盐", "袋", [("400g", 250)], None),
    Line("粮油/调味品", "涪陵榨菜", "乌江涪陵榨菜", "袋", [("80g", 250)], 270, ["早餐"]),
    # 日化
    Line(
        "日化/洗发护发",
        "海飞丝",
        "海飞丝去屑洗发露 清爽去油型",
        "瓶",
        [("200ml", 2990), ("400ml", 4990)],
        1095,
    ),
    Line("日化/洗发护发", "潘婷", "潘婷乳液修护洗发露", "瓶", [("400ml", 4590)], 1095),
    Line("日化/洗发护发", "清扬", "清扬男士去屑洗发露", "瓶", [("200g", 3290)], 1095),
    Line("日化/洗发护发", "沙宣", "沙宣修护水养洗发露", "瓶", [("400ml", 5990)], 1095),
    Line("日化/口腔护理", "高露洁", "高露洁全面防蛀牙膏", "支", [("140g", 1290)], 1095),
    Line("日化/口腔护理", "云南白药", "云南白药牙膏 留兰香型", "支", [("120g", 2890)], 1095),
    Line("日化/口腔护理", "佳洁士", "佳洁士3D炫白牙膏", "支", [("120g", 1990)], 1095),
    Line("日化/口腔护理", "舒克", "舒克宝贝儿童牙刷", "支", [("1支", 990)], None),
    Line(
        "日化/纸品湿巾",
        "维达",
        "维达超韧抽纸",
        "包",
        [("3层100抽", 350), ("3层100抽*6包", 1790)],
        None,
        ["热销"],
    ),
    Line("日化/纸品湿巾", "清风", "清风原木纯品抽纸", "包", [("2层150抽", 300)], None),
    Line("日化/纸品湿巾", "心相印", "心相印茶语手帕纸", "包", [("10包", 650)], None),
    Line("日化/纸品湿巾", "心相印", "心相印湿巾", "包", [("10片", 350), ("80片", 1590)], 1095),
    Line(
        "日化/衣物清洁",
        "蓝月亮",
        "蓝月亮深层洁净洗衣液",
        "瓶",
        [("1kg", 2990), ("3kg", 6990)],
        1095,
    ),
    Line("日化/衣物清洁", "立白", "立白超洁薰衣草洗衣粉", "袋", [("1.7kg", 2590)], 1095),
    Line("日化/衣物清洁", "奥妙", "奥妙全自动洗衣凝珠", "盒", [("52颗", 5990)], 1095, ["新品"]),
    # 酒类
    Line(
        "酒类/啤酒",
        "青岛啤酒",
        "青岛啤酒 经典",
        "罐",
        [("330ml", 450), ("500ml", 600), ("500ml*12罐", 6490)],
        365,
        ["夜宵", "热销"],
    ),
    Line("酒类/啤酒", "青岛啤酒", "青岛纯生", "瓶", [("600ml", 800)], 365),
    Line("酒类/啤酒", "雪花", "雪花勇闯天涯", "罐", [("500ml", 500)], 365, ["夏季"]),
    Line("酒类/啤酒", "百威", "百威啤酒", "罐", [("500ml", 700)], 365),
    Line("酒类/啤酒", "哈尔滨", "哈尔滨冰纯啤酒", "罐", [("330ml", 400)], 365),
    Line("酒类/啤酒", "燕京", "燕京U8小度特酿", "瓶", [("500ml", 600)], 365),
    Line("酒类/啤酒", "科罗娜", "科罗娜特级啤酒", "瓶", [("330ml", 1200)], 365, ["进口"]),
    Line("酒类/白酒", "牛栏山", "牛栏山陈酿 42度", "瓶", [("500ml", 2290)], None),
    Line("酒类/白酒", "红星", "红星二锅头 56度", "瓶", [("100ml", 600), ("500ml", 1890)], None),
    Line("酒类/白酒", "江小白", "江小白表达瓶 40度", "瓶", [("100ml", 2300)], None),
    # 速食冻品
    Line(
        "速食冻品/速冻水饺",
        "思念",
        "思念猪肉白菜水饺",
        "袋",
        [("500g", 1590), ("1kg", 2890)],
        365,
        ["夜宵"],
    ),
    Line("速食冻品/速冻水饺", "思念", "思念三鲜水饺", "袋", [("500g", 1690)], 365),
    Line("速食冻品/速冻水饺", "湾仔码头", "湾仔码头玉米猪肉水饺", "袋", [("720g", 3290)], 365),
    Line("速食冻品/速冻水饺", "湾仔码头", "湾仔码头荠菜猪肉云吞", "袋", [("300g", 1990)], 365),
    Line("速食冻品/速冻水饺", "三全", "三全灌汤水饺 猪肉玉米", "袋", [("1kg", 2590)], 365),
    Line("速食冻品/汤圆", "三全", "三全黑芝麻汤圆", "袋", [("500g", 1290)], 365),
    Line("速食冻品/汤圆", "思念", "思念花生汤圆", "袋", [("500g", 1290)], 365),
    Line("速食冻品/火锅丸料", "安井", "安井鱼丸", "袋", [("400g", 1490)], 365),
    Line("速食冻品/火锅丸料", "安井", "安井撒尿肉丸", "袋", [("400g", 1790)], 365),
    Line("速食冻品/火锅丸料", "海欣", "海欣鱼豆腐", "袋", [("240g", 1190)], 365),
    Line(
        "速食冻品/自热食品",
        "海底捞",
        "海底捞自热小火锅 麻辣嫩牛",
        "盒",
        [("435g", 3990)],
        270,
        ["夜宵"],
    ),
    Line("速食冻品/自热食品", "自嗨锅", "自嗨锅煲仔饭 台式卤肉", "盒", [("260g", 2590)], 270),
    Line("速食冻品/自热食品", "莫小仙", "莫小仙自热火锅 川味麻辣", "盒", [("400g", 2990)], 270),
    # 生鲜
    Line(
        "生鲜/鸡蛋",
        "德青源",
        "德青源无抗鲜鸡蛋",
        "盒",
        [("10枚", 1590), ("30枚", 4290)],
        30,
        ["早餐"],
    ),
    Line("生鲜/鸡蛋", "圣迪乐村", "圣迪乐村铂金蛋", "盒", [("10枚", 1790)], 30),
    Line("生鲜/水果", "佳农", "佳农香蕉", "把", [("约1kg", 1290)], 7),
    Line("生鲜/水果", "都乐", "都乐金菠萝", "个", [("约1.2kg", 2490)], 10, ["进口"]),
    Line("生鲜/水果", "佳沛", "佳沛新西兰绿奇异果", "盒", [("6个装", 3990)], 21, ["进口"]),
]

#: Drinks also sold by the case (箱), at a case discount.
CASE_PACKS: dict[str, tuple[int, int]] = {
    # category prefix -> (units per case, price per case as % of the single-unit total)
    "饮料/碳酸饮料": (24, 85),
    "饮料/饮用水": (24, 80),
    "饮料/果汁茶饮": (15, 88),
    "饮料/功能饮料": (24, 85),
    "乳品/酸奶": (12, 90),
    "乳品/乳饮料": (24, 88),
    "酒类/啤酒": (24, 85),
}

#: Stores where the demo sets a higher store price (tourist spot), and how much higher (%).
STORE_MARKUP: dict[str, int] = {"HZ001": 10}


def demo_barcode(line_index: int, variant_index: int) -> str:
    # 69 + a 5-digit made-up company number per line + a 5-digit item number + check digit
    return with_check_digit(f"69{880 + line_index:05d}{variant_index + 1:05d}")


@dataclass(frozen=True)
class DemoProduct:
    barcode: str
    name: str
    brand: str
    spec: str
    unit: str
    category: str
    price_fen: int
    cost_fen: int
    member_price_fen: int | None
    shelf_life_days: int | None
    track_batches: bool
    low_stock_threshold: int
    tags: tuple[str, ...]


def demo_products() -> list[DemoProduct]:
    """Every demo product, in a stable order."""
    out: list[DemoProduct] = []
    for li, line in enumerate(LINES):
        variants = list(line.variants)
        case = CASE_PACKS.get(line.category)
        if case is not None:
            units, pct = case
            variants += [
                (f"{spec}*{units}{line.unit}", price * units * pct // 100 // 10 * 10)
                for spec, price in line.variants
                if "*" not in spec and not spec.endswith(("L", "kg"))
            ]
        for vi, (spec, price) in enumerate(variants):
            seq = len(out)
            out.append(
                DemoProduct(
                    barcode=demo_barcode(li, vi),
                    name=line.name,
                    brand=line.brand,
                    spec=spec,
                    unit="箱" if "*" in spec and case is not None else line.unit,
                    category=line.category,
                    price_fen=price,
                    # cost at 60-75% of the retail price, varying with the position
                    cost_fen=price * (60 + seq % 16) // 100,
                    member_price_fen=price - max(10, price // 20) if seq % 3 == 0 else None,
                    shelf_life_days=line.shelf_life_days,
                    track_batches=line.shelf_life_days is not None and line.shelf_life_days <= 30,
                    low_stock_threshold=5 if price >= 3000 else 12,
                    tags=tuple(line.tags),
                )
            )
    return out


async def _categories(session: AsyncSession) -> dict[str, int]:
    ids: dict[str, int] = {}
    for top_order, (top, children) in enumerate(CATEGORY_TREE.items()):
        parent = await session.scalar(
            select(Category).where(Category.parent_id.is_(None), Category.name == top)
        )
        if parent is None:
            parent = Category(name=top, depth=1, sort_order=top_order)
            session.add(parent)
            await session.flush()
            parent.path = f"/{parent.id}/"
        ids[top] = parent.id
        for order, name in enumerate(children):
            child = await session.scalar(
                select(Category).where(Category.parent_id == parent.id, Category.name == name)
            )
            if child is None:
                child = Category(name=name, parent_id=parent.id, depth=2, sort_order=order)
                session.add(child)
                await session.flush()
                child.path = f"{parent.path}{child.id}/"
            ids[f"{top}/{name}"] = child.id
    await session.flush()
    return ids


async def _tags(session: AsyncSession) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name in TAGS:
        tag = await session.scalar(select(Tag).where(Tag.name == name))
        if tag is None:
            tag = Tag(name=name)
            session.add(tag)
            await session.flush()
        ids[name] = tag.id
    return ids


async def seed_catalog(session: AsyncSession, stores: Sequence[Store]) -> int:
    """Create the demo catalogue and list it in `stores`; returns how many products it added."""
    categories = await _categories(session)
    tags = await _tags(session)
    known = set((await session.scalars(select(ProductBarcode.code))).all())
    added = 0
    for seq, item in enumerate(demo_products()):
        code = item.barcode
        if code in known:
            continue
        product = Product(
            name=item.name,
            brand=item.brand,
            spec=item.spec,
            unit=item.unit,
            category_id=categories[item.category],
            price_fen=item.price_fen,
            cost_fen=item.cost_fen,
            member_price_fen=item.member_price_fen,
            shelf_life_days=item.shelf_life_days,
            track_batches=item.track_batches,
            low_stock_threshold=item.low_stock_threshold,
        )
        product.pinyin_full, product.pinyin_initials = search_keys(product.name, product.brand)
        session.add(product)
        await session.flush()
        session.add(ProductBarcode(product_id=product.id, code=code, kind="ean13"))
        for name in item.tags:
            session.add(ProductTag(product_id=product.id, tag_id=tags[name]))
        for store in stores:
            markup = STORE_MARKUP.get(store.code)
            session.add(
                StoreProduct(
                    store_id=store.id,
                    product_id=product.id,
                    # every 19th product is not sold in the second store
                    is_listed=not (store.code == "SH002" and seq % 19 == 0),
                    store_price_fen=(
                        product.price_fen * (100 + markup) // 100
                        if markup and seq % 4 == 0
                        else None
                    ),
                )
            )
        added += 1
    await session.flush()
    return added
