"""Deterministic fake organizations: people and teams the emulated IdPs load.

Same `seed` -> same org, byte for byte, so a failing test or demo run can be replayed. Sized for the benchmark
(50,000 people and 2,000 teams in about a second): no per-person lookups that grow with the org.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

DOMAIN = "acme.example"
ASSIGNED_TEAM = "Astro Users"  # the group both IdPs assign to the Astro app; holds every person

FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Katherine", "Linus",
    "Margaret", "Niklaus", "Radia", "Ken", "Dennis", "Bjarne", "Guido", "Hedy", "Tim", "Shafi",
    "Leslie", "Sophie", "Marvin", "Claude", "Annie", "Vint", "Robert", "Jean", "Carol", "Susan",
    "Dorothy", "Yukihiro", "Anders", "James", "Mary", "Lynn", "Adele", "Ivan", "Joan", "Charles",
    "Amara", "Chen", "Diego", "Elif", "Fatima", "Gustavo", "Hana", "Ibrahim", "Jun", "Kavya",
    "Lucia", "Mateo", "Nadia", "Oluwaseun", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Ursula",
    "Valentina", "Wei", "Ximena", "Yusuf", "Zara", "Aiko", "Bruno", "Camila", "Dmitri", "Esther",
    "Farid", "Greta", "Hugo", "Ingrid", "Jonas", "Kofi", "Leila", "Marco", "Noor", "Oscar",
    "Paula", "Rafael", "Sakura", "Tomas", "Uma", "Viktor", "Wanjiru", "Xavier", "Yara", "Zoltan",
    "Aoife", "Björn", "Chloé", "Dário", "Émile", "Freya", "Gökhan", "Hélène", "Iñaki", "Joël",
)

LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Johnson", "Torvalds",
    "Hamilton", "Wirth", "Perlman", "Thompson", "Ritchie", "Stroustrup", "Rossum", "Lamarr", "Berners-Lee",
    "Goldwasser", "Lamport", "Wilson", "Minsky", "Shannon", "Easley", "Cerf", "Kahn", "Sammet", "Shaw",
    "Kare", "Vaughan", "Matsumoto", "Hejlsberg", "Gosling", "Keller", "Conway", "Goldberg", "Sutherland",
    "Clarke", "Babbage", "Okafor", "Nguyen", "García", "Yılmaz", "Haddad", "Silva", "Kim", "Hassan",
    "Tanaka", "Iyer", "Rossi", "Fernández", "Petrova", "Adeyemi", "Sharma", "Dubois", "Moreno", "Lindqvist",
    "Rahman", "Schmidt", "Romano", "Li", "Ortiz", "Demir", "Malik", "Sato", "Costa", "Herrera",
    "Ivanov", "Cohen", "Novak", "Weber", "Kowalski", "Jensen", "Murphy", "O'Brien", "Mensah", "Kariuki",
    "Andersson", "Bianchi", "Castillo", "Dimitrov", "Eriksen", "Fischer", "Gonzaga", "Horvat", "Ishikawa",
    "Jovanović", "Kaur", "Larsen", "Mbeki", "Nakamura", "Olsen", "Park", "Quispe", "Reyes", "Suzuki",
    "Van der Berg",
)

DEPARTMENTS: dict[str, tuple[str, ...]] = {
    "Engineering": ("Software Engineer", "Senior Software Engineer", "Staff Engineer", "Engineering Manager"),
    "Data": ("Data Engineer", "Analytics Engineer", "Data Scientist", "Head of Data"),
    "Platform": ("Site Reliability Engineer", "Platform Engineer", "Cloud Architect"),
    "Product": ("Product Manager", "Product Designer", "UX Researcher"),
    "Finance": ("Financial Analyst", "Controller", "FP&A Manager"),
    "Sales": ("Account Executive", "Sales Engineer", "Customer Success Manager"),
    "Security": ("Security Engineer", "Security Analyst", "CISO"),
    "People": ("Recruiter", "People Partner", "Office Manager"),
}

TEAM_NAMES = (
    "Data Engineering", "Analytics", "Platform", "ML Research", "Data Science", "Finance Analytics",
    "Marketing Analytics", "Growth", "Infrastructure", "Security", "Site Reliability", "Business Intelligence",
    "Data Governance", "Customer Insights", "Pricing", "Forecasting", "Recommendations", "Search",
    "Payments", "Risk", "Fraud Detection", "Supply Chain", "Logistics", "Product Analytics",
    "Experimentation", "Data Quality", "Reporting", "Revenue Operations", "Sales Operations", "Support Tools",
    "Mobile", "Web", "Identity", "Compliance", "Observability", "Developer Experience",
    "Streaming", "Data Platform", "Feature Store", "MLOps",
)

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass
class Person:
    key: str
    first_name: str
    last_name: str
    display_name: str
    email: str  # also the login / SCIM userName
    department: str
    title: str
    active: bool = True


@dataclass
class Team:
    key: str
    name: str
    description: str
    member_keys: list[str] = field(default_factory=list)


@dataclass
class SeedOrg:
    people: list[Person]
    teams: list[Team]

    def person(self, key: str) -> Person:
        return self._people_by_key()[key]

    def team(self, name: str) -> Team:
        for team in self.teams:
            if team.name == name:
                return team
        raise KeyError(name)

    def _people_by_key(self) -> dict[str, Person]:
        return {p.key: p for p in self.people}


def _ascii_slug(name: str) -> str:
    # Emails must be plain ASCII local parts: fold accents the cheap, deterministic way.
    folded = name.lower()
    for src, dst in (("ä", "a"), ("å", "a"), ("á", "a"), ("à", "a"), ("ç", "c"), ("é", "e"), ("è", "e"),
                     ("ë", "e"), ("ğ", "g"), ("í", "i"), ("ı", "i"), ("ñ", "n"), ("ö", "o"), ("ó", "o"),
                     ("ø", "o"), ("ş", "s"), ("ü", "u"), ("ú", "u"), ("ć", "c"), ("š", "s"), ("ž", "z")):
        folded = folded.replace(src, dst)
    return _NON_ALNUM.sub("", folded)


def _team_name(index: int) -> str:
    """The index-th team name: the realistic list first, then numbered variants ("Analytics 2", ...)."""
    base = TEAM_NAMES[index % len(TEAM_NAMES)]
    round_ = index // len(TEAM_NAMES)
    return base if round_ == 0 else f"{base} {round_ + 1}"


def generate(users: int, groups: int, seed: int) -> SeedOrg:
    """An org of `users` people, the "Astro Users" team holding all of them, and `groups` other teams."""
    if users < 0 or groups < 0:
        raise ValueError("users and groups must be >= 0")
    rng = random.Random(seed)
    departments = list(DEPARTMENTS)
    people: list[Person] = []
    taken: set[str] = set()
    for i in range(users):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        department = rng.choice(departments)
        local = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
        email = f"{local}@{DOMAIN}"
        n = 1
        while email in taken:  # same name twice: add digits, as mail admins do
            n += 1
            email = f"{local}{n}@{DOMAIN}"
        taken.add(email)
        people.append(Person(
            key=f"p{i + 1:05d}",
            first_name=first,
            last_name=last,
            display_name=f"{first} {last}",
            email=email,
            department=department,
            title=rng.choice(DEPARTMENTS[department]),
        ))

    everyone = Team(
        key="t0001",
        name=ASSIGNED_TEAM,
        description="Everyone who may sign in to Astro (assigned to the app in each IdP)",
        member_keys=[p.key for p in people],
    )
    teams = [
        Team(key=f"t{i + 2:04d}", name=_team_name(i), description=f"The {_team_name(i)} team")
        for i in range(groups)
    ]
    if teams:
        for person in people:
            for team in rng.sample(teams, rng.randint(0, min(3, len(teams)))):
                team.member_keys.append(person.key)
        # Small orgs could leave a team empty by chance; pushed groups in demos and tests need members.
        for index, team in enumerate(teams):
            if not team.member_keys and people:
                team.member_keys.append(people[index % len(people)].key)
        for team in teams:
            team.member_keys.sort()
    return SeedOrg(people=people, teams=[everyone, *teams])
