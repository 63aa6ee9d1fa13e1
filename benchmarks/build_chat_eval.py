"""How src/tuneforge/data/files/chat_eval.jsonl was made: the queries below are written by hand; this script
only looks up the FAQ answers (references) and checks every expected source exists. See docs/chat.md."""

import collections
import json
import sys

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "src"))
from tuneforge.data.bundled import load_bbc_news, load_chatterbot_faq

F = "bundled:chatterbot-faq/"
faq = [  # (source, reworded query) -- reference = the FAQ answer
    ("trivia.yml#98.1", "Where is the grave of Jim Morrison located?"),
    ("trivia.yml#137.1", "What's another name for chickpeas?"),
    ("literature.yml#41.1", "Which author wrote the novel The Idiot?"),
    ("trivia.yml#32.1", "What do the British call the day following Christmas?"),
    ("trivia.yml#81.1", "What colour is the drink absinthe?"),
    ("science.yml#13.1", "Can you explain what cytology is?"),
    ("trivia.yml#73.1", "Which US state was the very first one?"),
    ("tech_support.yml#5.1", "There's no audio coming out of my computer at all."),
    ("ai.yml#52.1", "Could you tell me what a chatbot is?"),
    ("tech_support.yml#4.1", "The display on my notebook has gone completely dark."),
    ("trivia.yml#231.1", "What was sold by the very first vending machine?"),
    ("trivia.yml#226.1", "Falafel is mostly made from what?"),
    ("trivia.yml#88.1", "Which flower bulbs were once used as money?"),
    ("trivia.yml#249.1", "What insect can tell you how warm the air is?"),
    ("trivia.yml#215.1", "Who was the painter of Guernica?"),
    ("trivia.yml#141.1", "Which fruit carries its seeds on its outer skin?"),
    ("trivia.yml#206.1", "The tuba belongs to which family of instruments?"),
    ("trivia.yml#75.1", "In what city was Beethoven born back in 1770?"),
    ("trivia.yml#201.1", "Which part of an atom carries a positive charge?"),
    ("science.yml#15.1", "What does the field of bacteriology study?"),
    ("ai.yml#11.1", "Which programming language were you built with?"),
    ("trivia.yml#1.1", "Who served as the 37th president of the USA?"),
    ("trivia.yml#252.1", "On which continent did blueberries originate?"),
    ("money.yml#20.1", "Explain economics to me."),
    ("sports.yml#6.1", "Can you describe the game of baseball?"),
    ("trivia.yml#203.1", "What's the capital city of Jordan?"),
    ("tech_support.yml#28.1", "My monitor keeps flickering, what can I do?"),
    ("trivia.yml#101.1", "Which horse took the Triple Crown in 1973?"),
    ("trivia.yml#160.1", "What metal is most common in the crust of the Earth?"),
    ("trivia.yml#247.1", "Which country shares borders with Germany, the Czech Republic, Slovakia and Ukraine?"),
    ("money.yml#31.1", "Who owns a company that is publicly owned?"),
    ("trivia.yml#56.1", "What is the hottest planet in our solar system?"),
    ("tech_support.yml#1.1", "My computer keeps getting far too hot."),
    ("trivia.yml#233.1", "Which Canadian city has the biggest population?"),
    ("trivia.yml#65.1", "How many hearts do octopuses have?"),
    ("history.yml#8.1", "Who was the inventor of the steam engine?"),
    ("politics.yml#3.1", "What kind of organisation is Greenpeace?"),
    ("trivia.yml#124.1", "What is the name of the Jewish new year festival?"),
    ("trivia.yml#97.1", "Which NFL franchise has appeared in the most Super Bowls?"),
    ("trivia.yml#217.1", "Besides green, what is the other traditional colour of Wimbledon?"),
    ("trivia.yml#104.1", "A tick bite can make people allergic to which food?"),
    ("ai.yml#100.1", "What can your product be used for?"),
]
B = "bundled:bbc-news/"
docs = [  # (article, question about its contents, reference: a short span of the article)
    ("business/012.txt", "By how much is Indonesia's government considering raising fuel prices?", "as much as 30%"),
    ("business/047.txt", "How many Boeing 737-800 planes did Ryanair order?", "70 Boeing 737-800 planes, in a deal valued at $4bn"),
    ("business/103.txt", "How many jobs is the insurance broker Marsh & McLennan cutting?", "Up to 2,500 jobs"),
    ("business/158.txt", "What share of the Qatar liquid natural gas project will Shell own?", "30% of the project"),
    ("business/214.txt", "What did the BDO optimism index edge up to in January?", "102.5, from 102.2 in October"),
    (
        "business/271.txt",
        "What is the name of the new stadium Arsenal is moving to?",
        "the 60,000-seater Emirates Stadium at Ashburton Grove",
    ),
    ("entertainment/012.txt", "Which theatre is Liam Neeson trying to help revive?", "Belfast's Lyric Theatre"),
    ("entertainment/047.txt", "How many Tutsis did the hotel manager in Hotel Rwanda save?", "1,200 Tutsis"),
    ("entertainment/103.txt", "Which US chart now includes digital music downloads?", "Billboard's Hot 100 chart"),
    (
        "entertainment/158.txt",
        "Which singer will take Freddie Mercury's place on Queen's tour?",
        "Paul Rodgers, former Free and Bad Company singer",
    ),
    (
        "entertainment/214.txt",
        "What is the BBC One docu-drama Supervolcano about?",
        "a volcanic eruption in Yellowstone National Park in the US",
    ),
    (
        "entertainment/271.txt",
        "Who said the German music business is in the state of a zombie?",
        "Tim Renner, the head of Universal Music Germany until last year",
    ),
    (
        "politics/012.txt",
        "Why did Tony Blair apologise to the Conlon and Maguire families?",
        "the wrongful jailing of 11 people for IRA bomb attacks on pubs in Guildford and Woolwich in 1974",
    ),
    ("politics/047.txt", "By how much did university applications to Scotland from England and Wales rise?", "17%, up 23,600 to 27,700"),
    (
        "politics/103.txt",
        "What are foster carers going to be guaranteed by the government?",
        "a minimum allowance to help cover their costs",
    ),
    ("politics/158.txt", "What did Gordon Brown announce about fuel duty in his pre-budget speech?", "a freeze on fuel duty"),
    ("politics/214.txt", "How often was there a prison suicide between 1999 and 2003?", "one prison suicide every four days"),
    ("politics/271.txt", "How much does Michael Howard say the Tories can save by tackling waste?", "£35bn in government spending"),
    ("tech/012.txt", "How much is IBM spending on its Linux push?", "$100m (£52m) over the next three years"),
    (
        "tech/047.txt",
        "How many adult Americans own an MP3 player according to the Pew survey?",
        "One in 10 adult Americans - equivalent to 22 million people",
    ),
    ("tech/103.txt", "How many camera phones will be sold globally according to Gartner?", "159 million, an increase of 104%"),
    ("tech/158.txt", "How many Europeans are connected to the net via broadband?", "Just over 54 million people"),
    ("tech/214.txt", "What was the name of Lycos Europe's anti-spam screensaver campaign?", "Make Love, Not Spam"),
    ("tech/271.txt", "Who was arrested for hacking into T-Mobile's computers?", "Nicholas Lee Jacobsen, a Californian man"),
    ("sports/012.txt", "Who does Jonathan Edwards tip for gold at the European Indoor Championships?", "Phillips Idowu"),
    ("sports/047.txt", "What is Greek sprinter Kostas Kenteris accused of faking?", "a motorbike crash to avoid a doping test"),
    ("sports/103.txt", "Which Chelsea player was ruled out of the Barcelona match?", "Damien Duff, with a knee injury"),
    ("sports/158.txt", "In which year did Manchester United sell Jaap Stam?", "2001"),
    ("sports/214.txt", "Who scored the goal in Mansfield's 0-1 defeat to Leyton Orient?", "Andy Scott"),
    ("sports/271.txt", "Which Arsenal player does Sepp Blatter hope will be World Player of the Year?", "Thierry Henry"),
]
out_of_scope = [
    "Where is my parcel? I ordered a blender last Tuesday and it has not arrived.",
    "Can you cancel my subscription and refund the last payment?",
    "I was charged twice on my credit card statement this month.",
    "What is the weather forecast for Manchester tomorrow?",
    "Please change the delivery address on order 48213 to my office.",
    "How do I reset the password of my online banking account?",
    "Is my warranty still valid for the washing machine I bought in 2021?",
    "What are your opening hours on bank holidays?",
    "Can I bring my dog into your store in Leeds?",
    "What dose of ibuprofen should I give my three-year-old?",
    "My landlord wants to evict me, what are my legal rights?",
    "Book me a table for four at eight tonight.",
    "How much will it cost to ship a sofa to Norway?",
    "What is the exchange rate of the euro to the yen right now?",
    "Why was my loyalty card points balance reset to zero?",
    "Can you send me a copy of invoice INV-2024-0093?",
    "Who won the football match last night?",
    "My new phone from you arrived with a cracked screen, I want a replacement.",
    "Do you offer student discounts on annual plans?",
    "How do I file my 2023 tax return late without a penalty?",
    "What's the tracking number for my return label?",
    "Can I upgrade my broadband contract before it ends?",
    "Which of your stores near me has the red trainers in size 9?",
    "I want to speak to the manager about yesterday's rude staff member.",
    "What time does the last train leave for Glasgow today?",
    "How do I transfer my mobile number to another network?",
    "Is there gluten in your new vegan pizza?",
    "Can you delete all the personal data you hold about me?",
    "When will the software update for my smart TV be released?",
    "How many vacation days do I have left this year?",
]

faq_frame = load_chatterbot_faq().set_index("source")
questions = set(faq_frame["text"].str.lower().str.strip())
bbc = set(load_bbc_news()["source"])
rows = []


def split_of(i, n):
    return "validation" if i < round(0.4 * n) else "test"


for i, (src, q) in enumerate(faq):
    ref = faq_frame.loc[F + src, "label"]
    assert q.lower().strip() not in questions, f"{q!r} is an FAQ question verbatim"
    rows.append({"query": q, "reference": ref, "expected_source": F + src, "kind": "faq", "split": split_of(i, len(faq))})
for i, (src, q, ref) in enumerate(docs):
    assert B + src in bbc, src
    rows.append({"query": q, "reference": ref, "expected_source": B + src, "kind": "document", "split": split_of(i, len(docs))})
for i, q in enumerate(out_of_scope):
    rows.append({"query": q, "reference": None, "expected_source": None, "kind": "out_of_scope", "split": split_of(i, len(out_of_scope))})
# interleave kinds so that a cut to the first N queries (chat.eval_max_queries) keeps all three
rows.sort(key=lambda r: (r["split"] != "validation",))
with open(
    __import__("pathlib").Path(__file__).resolve().parents[1] / "src/tuneforge/data/files/chat_eval.jsonl", "w", encoding="utf-8"
) as fh:
    for r in rows:
        fh.write(json.dumps(r, ensure_ascii=False) + "\n")
print(collections.Counter((r["kind"], r["split"]) for r in rows))
