/**
 * English prose written for this project (original text, free to use) that the tokenizer trainer
 * learns its merges from. Varied registers on purpose: narrative, explanation, dialogue, lists,
 * numbers and dates, so common English pieces become single tokens as in a real vocabulary.
 */
export const PROSE: readonly string[] = [
  `The river begins as a thin thread of water high in the hills, where snow lingers until early summer.
It gathers strength from a hundred small streams, each one too modest to have a name, and by the
time it reaches the valley it is wide enough that the old ferry still runs twice a day. People who
live along its banks measure the year by its moods: the brown flood of spring, the slow green
calm of August, the first ice that forms along the edges in November. Nobody remembers a winter
when the river froze all the way across, although the grandparents insist that it happened once.`,

  `Baking bread is mostly a matter of patience. You mix flour, water, salt and a little yeast, and
then you wait. The dough rises while you do something else; it does not need to be watched. After
an hour or two you fold it gently, shape it into a round loaf, and let it rest again. The oven
should be very hot. When the loaf comes out, the crust crackles as it cools, and the kitchen smells
like a promise kept. Most mistakes come from hurrying: dough that has not risen enough makes a dense,
heavy crumb, and bread cut while it is still warm turns gummy in the middle.`,

  `A clock is a machine for dividing time into equal parts. The earliest ones used falling water or
burning candles, and they were never very accurate. Mechanical clocks appeared in towers and
churches, driven by heavy weights and regulated by an escapement that released the gears one tooth
at a time. The pendulum made clocks far more precise, because a swinging weight keeps nearly the
same period whatever the size of its swing. Today the most accurate clocks count the vibrations of
atoms, and they would lose less than a second over the age of the universe.`,

  `She opened the window and listened. The street was quiet except for a dog barking somewhere near
the station and the distant hum of traffic on the highway. It was the kind of evening that makes you
want to walk without a destination. She put on her coat, locked the door behind her, and went down
the stairs two at a time. At the corner she hesitated, then turned left, toward the park, because
the lamps there were already lit and the path under the trees looked warm and yellow.`,

  `Learning to sail teaches you to pay attention to things you normally ignore. You notice which way
the wind is blowing, how the clouds are moving, whether the water ahead looks darker because a gust
is coming. You learn that the shortest path is rarely a straight line: to reach a point upwind you
must tack back and forth, trading distance for progress. Experienced sailors seem calm because they
have already made every mistake once and have learned to expect the unexpected.`,

  `The garden was small but carefully planned. Tomatoes grew along the south wall where they caught
the afternoon sun. Beans climbed a frame of bamboo poles, and lettuce filled the shady corner under
the apple tree. Every morning the old man walked the rows with a watering can, pulling weeds as he
went and talking to the plants in a low voice. His neighbors laughed at him, but his vegetables were
the best on the street, and every autumn he gave away more than he could eat.`,

  `Mathematics is the study of patterns that can be described exactly. A prime number is a whole number
greater than one that has no divisors other than one and itself: 2, 3, 5, 7, 11, 13, 17, 19, 23 and
29 are the first ten. There are infinitely many primes, a fact that was proved more than two thousand
years ago with an argument so short that it still fits on a single page. Suppose there were only
finitely many; multiply them all together and add one. The result is not divisible by any of them, so
either it is prime itself or it has a prime factor that was missing from the list.`,

  `Question: Why is the sky blue?
Answer: Sunlight contains every color, but air molecules scatter short wavelengths much more
strongly than long ones. Blue light is scattered in every direction across the sky, so wherever
you look you see some of it. At sunset the light travels through much more air, most of the blue is
scattered away before it reaches you, and the remaining light looks orange and red.`,

  `Question: How many minutes are there in a week?
Answer: A day has 24 hours and an hour has 60 minutes, so a day has 1440 minutes. A week has seven
days, so it has 7 times 1440, which is 10080 minutes.`,

  `Question: What is the capital of France?
Answer: The capital of France is Paris. It has been the seat of government for most of the country's
history and is also its largest city.`,

  `User: Can you help me write a short note to my landlord about the broken heater?
Assistant: Of course. Here is a short, polite note you can adapt:
Dear Mr. Alvarez, I am writing to let you know that the heater in my apartment stopped working on
Monday evening. The apartment gets very cold at night, so I would be grateful if it could be
repaired as soon as possible. I am at home most afternoons if someone needs to come in. Thank you
for your help. Best regards, Maria.`,

  `User: What's a good way to remember the order of the planets?
Assistant: Many people use a sentence whose words start with the same letters as the planets:
"My Very Educated Mother Just Served Us Noodles" stands for Mercury, Venus, Earth, Mars, Jupiter,
Saturn, Uranus and Neptune. You can also make up your own sentence; the sillier it is, the easier
it usually is to remember.`,

  `User: I have three apples and I eat one. How many do I have left?
Assistant: You started with three apples and ate one, so you have two apples left.`,

  `User: Summarize the plot of a typical detective story in two sentences.
Assistant: A crime is discovered, and a detective gathers clues while suspects hide secrets and
tell half-truths. In the end the detective explains how the small details fit together and names
the person who did it, usually the one nobody suspected.`,

  `The history of writing is, in a sense, the history of memory. Before writing, everything a people
knew had to be held in living minds and passed on by speaking. Songs, genealogies and laws were
memorized and recited, often with rhythm and rhyme to make them easier to recall. The first written
records were practical: lists of grain, cattle and debts pressed into clay tablets. Only later did
people begin to write down stories, prayers, letters and arguments, and once they did, ideas could
travel farther and last longer than any single person.`,

  `When you debug a program, start by making the failure repeatable. A bug that appears only
sometimes is much harder to understand than one that happens every time you run a particular
command. Write down exactly what you did, what you expected, and what happened instead. Then
shrink the problem: remove everything that is not needed to reproduce it. Very often, by the time
the example is small enough to share with someone else, you will have found the cause yourself.`,

  `The library opened at nine o'clock, but a small crowd always gathered on the steps before then.
There were students with heavy backpacks, retired teachers who came every day to read the
newspapers, and parents with young children waiting for the story hour. The librarian knew most of
them by name. She had worked there for thirty-one years and could find almost any book without
looking it up, although she would never admit that she sometimes forgot where she had left her
glasses.`,

  `Weather forecasts are built from millions of measurements taken every hour: temperature,
pressure, humidity and wind speed, recorded by stations on land, by buoys at sea, by balloons and by
satellites. Computers divide the atmosphere into a grid of boxes and calculate how each box will
change over the next few minutes, then repeat the calculation again and again. Small errors grow as
the forecast looks further ahead, which is why a forecast for tomorrow is usually right and one for
next month is little more than an educated guess.`,

  `On Tuesday, 14 March, the committee met at 10:30 in room 204. Present were six members and two
guests. The minutes of the previous meeting were approved without changes. The treasurer reported a
balance of 12,450 dollars, an increase of 8 percent over the last quarter. The committee agreed to
spend up to 3,000 dollars on new chairs for the reading room and to review the budget again in
June. The meeting ended at 11:45. The next meeting will be held on 11 April at the same time.`,

  `Good software is written for people first and computers second. The computer does not care whether
a variable is called x or total_price, but the next person who reads the code certainly does. Short
functions that do one thing, names that say what they mean, and comments that explain why rather
than what make a program easier to change. Tests are a kind of documentation too: they show how
the code is supposed to be used and they warn you when a change breaks something you forgot about.`,

  `The train left the city a few minutes after dawn. At first the view was all warehouses and
parking lots, then small houses with laundry drying in the yards, and finally open fields covered
with frost. A man across the aisle was reading a thick novel and turning the pages very slowly, as
if he did not want it to end. Two children at the back of the carriage were playing a game that
seemed to consist entirely of counting cows. By the time the sun was fully up, they had reached
three hundred and were arguing about whether a horse should count as half a cow.`,

  `Energy can be neither created nor destroyed; it only changes form. When you lift a book onto a
shelf, the chemical energy in your muscles becomes potential energy stored in the book's height.
If the book falls, that potential energy becomes motion, and when it hits the floor the motion
becomes sound and a tiny amount of heat. Engineers use this principle every day, counting where the
energy goes in an engine or a building so that as little as possible is wasted.`,

  `Dear friends, thank you all for coming tonight. When we started this project five years ago, we
were four people in a borrowed office with one working computer and a great deal of optimism.
Today we are more than forty, and the work we do reaches people in twelve countries. None of that
would have been possible without your trust, your patience and your willingness to tell us when we
were wrong. I hope the next five years will be just as surprising as the last.`,

  `Instructions: Preheat the oven to 180 degrees. Grease a square baking tin. In a large bowl, beat
two eggs with 150 grams of sugar until pale. Stir in 100 grams of melted butter and 200 grams of
flour mixed with a teaspoon of baking powder. Add the grated zest of one lemon. Pour the batter into
the tin and bake for 25 to 30 minutes, until a knife inserted in the center comes out clean. Let it
cool for ten minutes before turning it out.`,

  `The lighthouse keeper kept a log of every ship that passed. Most entries were short: the date, the
time, the name of the vessel if he could read it, and the direction in which it was sailing. On
stormy nights the entries grew longer and more anxious. He wrote about waves breaking over the
rocks, about the lamp that had to be cleaned every few hours, and once about a small fishing boat
that he watched for an hour until it finally reached the shelter of the harbor. Under that entry he
had written a single word: safe.`,

  `There are several reasons why a network request can fail. The server may be down, the address may
be wrong, the connection may time out, or the response may arrive but contain an error. A robust
client treats each of these differently. It retries requests that failed for temporary reasons,
waiting a little longer each time, and it gives up quickly on errors that will not go away, such as
a missing resource or an invalid key. Most importantly, it reports what went wrong in words that a
person can act on.`,

  `It was late when the last guest left. The table was covered with empty glasses, crumbs and the
remains of a chocolate cake that nobody had been able to finish. Tom stacked the plates in the sink
and decided that the washing up could wait until morning. He opened the balcony door and stood
outside for a while in the cool air, listening to the city settle down for the night. Somewhere a
radio was playing an old song he half remembered, and he hummed along without knowing the words.`,

  `Frequently asked questions. How do I reset my password? Open the sign-in page, choose "Forgot
password", and follow the link we send to your email address. The link expires after one hour. Can I
change my username? Yes, once every thirty days, from the account settings page. Why was my payment
declined? The most common reasons are an expired card, a billing address that does not match, or a
limit set by your bank. Please contact your bank first, and write to us if the problem continues.`,

  `The first rule of mountain walking is to turn back early. The summit will still be there next
year; you might not be, if you keep climbing into a storm. Check the forecast before you leave,
tell someone where you are going, and carry more water and warm clothing than you think you need.
Start early, because afternoon clouds often bring thunder in summer. And remember that most
accidents happen on the way down, when people are tired and less careful.`,

  `Numbers and units: 1 kilometre is 1000 metres; 1 mile is about 1.609 kilometres; 1 kilogram is
about 2.205 pounds; water boils at 100 degrees Celsius, or 212 degrees Fahrenheit, at sea level; the
speed of light is 299,792,458 metres per second; a year has 365 days, or 366 in a leap year; 2024,
2028 and 2032 are leap years, while 2100 will not be one. Pi is approximately 3.14159 and the square
root of two is approximately 1.41421.`,

  `Some words are spelled very differently from how they sound: "colonel", "yacht", "island",
"knight", "queue" and "Wednesday" are favourite examples. English borrowed words from many
languages over many centuries, and spelling often kept the form of the original while pronunciation
moved on. Other languages reformed their spelling more often. That is one reason why English
spelling competitions are popular, and why even native speakers keep a dictionary close at hand.`,

  `The experiment was simple. Two groups of students were given the same list of forty words. The
first group read the list three times; the second group read it once and then tried to write down
as many words as they could remember, checked their answers, and tried again. A week later the
second group remembered almost twice as many words. Testing yourself, it seems, is not only a way
of measuring what you know but also one of the best ways of learning it.`,

  `Multilingual notes. Bonjour, je m'appelle Claire et j'habite à Lyon. Ça va très bien, merci.
Guten Morgen! Wir treffen uns um acht Uhr vor dem Bahnhof; bitte sei pünktlich. ¿Dónde está la
biblioteca? Está al lado de la estación, a cinco minutos a pie. Olá, tudo bem? Vamos à praia amanhã.
Buongiorno, vorrei un caffè e un cornetto, per favore. Привет, как дела? Всё хорошо, спасибо.
Καλημέρα, τι κάνεις; 你好，今天天气很好。我们去公园散步吧。こんにちは、元気ですか？東京は晴れです。
안녕하세요, 만나서 반갑습니다. مرحبا بك. שלום עולם. नमस्ते दुनिया। Emoji: 😀 🎉 👍 ❤️ 🚀 ✅ 🌍 🍞 ☕ 🐍.
Symbols: € £ ¥ © ® ™ ° ± × ÷ ≤ ≥ ≠ ∞ → ← ↑ ↓ • … – — « » “ ” ‘ ’.`,

  `In the morning the fog lay so thick over the harbor that the boats seemed to float in the air. The
fishermen moved slowly, calling to one another in low voices, coiling ropes and checking nets by
touch as much as by sight. By nine the sun had burned through, the water turned from grey to blue,
and the whole town seemed to wake up at once: shutters opened, a bakery put out its tables, and the
first tourists appeared with their cameras, looking for the view they had seen on a postcard.`,

  `Rules for the reading group: everyone chooses one book a year; we meet on the first Thursday of
each month; the person who chose the book brings the tea; nobody is allowed to apologize for not
finishing the book, and nobody is allowed to reveal the ending to those who have not finished it.
Over the years we have read novels, biographies, a history of salt, a book about the migration of
eels, and a collection of letters that made three of us cry.`,

  `The difference between weather and climate is a matter of time. Weather is what happens today:
rain this afternoon, a cold wind tomorrow. Climate is the pattern of weather over many years, the
average and the range of what usually happens in a place. A single hot summer says little about the
climate, but thirty summers that are hotter on average than the thirty before them say a great deal.`,

  `The old map showed roads that no longer existed and missed others that had been built since. Still,
the shape of the coast was right, and so were the hills and the rivers. Maps age in the same way as
people: the details change, but the basic features remain recognizable for a very long time. She
folded it carefully along its worn creases and put it back in the drawer where it had lived for
forty years.`,
];
